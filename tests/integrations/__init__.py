"""Tests of the agent-framework integrations."""
