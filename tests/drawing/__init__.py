"""Tests of the image models: Bedrock and SageMaker on the stand-ins, and the offline preview."""
