"""Adapters of the retrieval ports: ONNX and Bedrock embedders, BM25, Qdrant Edge and qdrant-client."""
