"""Tests of prompt writing: the template, Claude on the Bedrock stand-in and the offline composer."""
