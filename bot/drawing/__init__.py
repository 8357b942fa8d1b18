"""Drawing: image-model adapters (Bedrock, SageMaker, the offline preview) and their request bodies."""
