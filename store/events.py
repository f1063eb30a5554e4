"""Change events: the store announces each commit, so screens can refresh (DESIGN §2.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """One durable commit. ``kind`` is its journal entry's kind (``local``, ``sync``, ``meta``,
    ``enroll``, ``rewind``); ``ids`` and ``types`` the records it changed or removed (empty for
    ``meta``)."""

    kind: str
    ids: frozenset[str]
    types: frozenset[str]


Subscriber = Callable[[Change], object]
