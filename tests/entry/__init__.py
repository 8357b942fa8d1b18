"""Tests of the ways in: the CLI, the demo and `serve` as real processes."""
