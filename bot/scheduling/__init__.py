"""Scheduling turns: fair use, the job journal, per-thread order and the graceful drain."""
