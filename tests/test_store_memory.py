"""The in-memory store runs the whole store contract."""

from .store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    kind = "memory"
