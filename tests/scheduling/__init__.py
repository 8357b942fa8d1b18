"""Tests of fair use, the job journal and the graceful drain."""
