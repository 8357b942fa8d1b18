"""Tests of the conversation engine, its options, policy and turn log."""
