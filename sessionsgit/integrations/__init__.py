"""Adapters that let agent frameworks keep their conversations in sessionsgit."""
