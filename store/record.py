"""One shape of a record for the rules that run on both sides (scope, ownership, mobility).

The device keeps records as documents in its state and the county server as rows; both show
them to ``store/scope.py`` as a ``Rec``. ``writer_org_id`` is the organization whose device made
the record: the server knows it for every record; a device knows only whether it was its own
organization (records it made, and those the server marks as its organization's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rec:
    rec_id: str
    type: str
    fields: dict[str, Any]
    versions: dict[str, int] = field(default_factory=dict)
    hlcs: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    deleted: bool = False
    seq: int = 0
    last_device: str | None = None
    writer_org_id: str | None = None
    parent_id: str | None = None
    county_id: str | None = None

    def wire(self) -> dict[str, Any]:
        """The record as a device receives it (FORMAT.md); ``v`` is one number when every
        field has the same version (most records), which keeps an initial sync small."""
        versions = {k: v for k, v in self.versions.items() if k in self.fields}
        distinct = set(versions.values())
        out: dict[str, Any] = {"id": self.rec_id, "t": self.type, "f": self.fields,
                               "v": distinct.pop() if len(distinct) == 1 and len(versions) ==
                               len(self.fields) else versions, "c": self.created_at}
        if self.updated_at != self.created_at:
            out["u"] = self.updated_at
        if self.deleted:
            out["d"] = 1
        return out
