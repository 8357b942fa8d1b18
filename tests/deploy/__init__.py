"""Tests of the deployment assets: Docker, compose, the CloudFormation template, IAM and the manifest."""
