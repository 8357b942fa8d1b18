"""Smoke tests of the benchmarks on tiny inputs."""
