"""Tests of SQL storage: migrations, engines, stores, and busy databases."""
