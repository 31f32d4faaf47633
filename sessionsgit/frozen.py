"""Read-only JSON containers for conversation messages.

A ``Conversation`` hands out messages as ``FrozenDict`` / ``FrozenList``: deeply immutable, yet
still a ``dict`` / ``list`` to ``json``, ``==`` and any code that only reads them. Because they
cannot change, a store can tell an unchanged message by identity alone and skip comparing the
whole transcript on every save (the comparison is what made saves grow with length)."""

from __future__ import annotations

from typing import Any, NoReturn

_READ_ONLY = ("conversation messages are read-only; build a new message (or call "
              "Conversation.load with an edited copy) instead of changing one in place")


def _refuse(*_: Any, **__: Any) -> NoReturn:
    raise TypeError(_READ_ONLY)


class FrozenDict(dict):
    """A dict whose contents (and everything nested in it) can never change."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        source = dict(*args, **kwargs)
        dict.__init__(self, {key: freeze(value) for key, value in source.items()})

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> "FrozenDict":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "FrozenDict":
        return self

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


class FrozenList(list):
    """A list whose items (and everything nested in them) can never change."""

    __slots__ = ()

    def __init__(self, items: Any = ()) -> None:
        list.__init__(self, [freeze(item) for item in items])

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _refuse
    sort = reverse = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> "FrozenList":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "FrozenList":
        return self

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"


def freeze(value: Any) -> Any:
    """A deeply read-only version of a JSON value (frozen values are returned as they are)."""
    if type(value) is FrozenDict or type(value) is FrozenList:
        return value
    if isinstance(value, dict):
        return FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return FrozenList(value)
    return value


def is_frozen(value: Any) -> bool:
    """Whether ``value`` is a frozen container (and so can be trusted by identity)."""
    return type(value) is FrozenDict or type(value) is FrozenList
