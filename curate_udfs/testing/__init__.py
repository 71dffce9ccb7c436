"""Test and smoke-test helpers that users can run too: sample videos, synthetic videos."""
