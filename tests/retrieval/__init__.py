"""Tests of the prompt library: cleaning, embedders, indexes, ingest, search and safety screens."""
