import pytest

from sessionsgit import InMemorySessionStore

from .store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self):
        return InMemorySessionStore()

    @pytest.fixture
    def reopen(self, store):
        return lambda: store
