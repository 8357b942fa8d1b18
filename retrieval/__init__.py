"""Retrieval over the prompt library: embeddings, the prompt index, ingest and search."""
