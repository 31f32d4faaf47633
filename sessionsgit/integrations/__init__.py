"""Adapters that let agent frameworks keep their state in sessionsgit.

Each lives in its own module and imports its framework only when that module is imported, so
``import sessionsgit`` never pulls in any of them (``sessionsgit.integrations.langgraph`` needs
the ``langgraph`` extra)."""
