"""The register as the derived views read it, without a store: what the worklist
(store/rules.py) and the statistics (store/stats.py) take, so the same code runs on a device
and on the county server.

A device passes its ``Store``. The county server passes a ``RecordView``: an in-memory
``State`` filled with the records a device of one organization would hold, in the wire form a
device receives them (``Rec.wire``), folded in by the same ``apply_entry`` that folds a sync
answer on the device. Its indexes (a member's records, open flows, meetings by person, the
organization tree) are therefore the device's own, built by the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from .frozen import Record
from .state import State


class Register(Protocol):
    """What the derived views read of a register: a ``Store`` on a device, a ``RecordView``
    on the county server."""

    @property
    def meta(self) -> Mapping[str, Any]: ...  # "own_org_id": whose view it is

    @property
    def state(self) -> State: ...  # its indexes: subtree, records of a member, …

    def get(self, rec_id: str, include_deleted: bool = False) -> Record | None: ...

    def live(self, type_name: str) -> Iterator[Record]: ...


class RecordView:
    """A read-only register over a ``State`` that no journal backs (nothing is written)."""

    def __init__(self, state: State) -> None:
        self.state = state

    @classmethod
    def of_records(cls, own_org_id: str, records: Iterable[dict[str, Any]]) -> RecordView:
        """The register of ``own_org_id`` holding ``records`` (wire form: ``{"id", "t", "f",
        "v", "c", "u"?, "d"?}``), as a device of that organization holds them after a sync."""
        state = State()
        state.apply_entry({"k": "meta", "set": {"own_org_id": own_org_id}})
        state.apply_entry({"k": "sync", "acked": 0, "changes": list(records)})
        return cls(state)

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.state.meta

    def get(self, rec_id: str, include_deleted: bool = False) -> Record | None:
        return self.state.get(rec_id, include_deleted)

    def live(self, type_name: str) -> Iterator[Record]:
        return self.state.live(type_name)
