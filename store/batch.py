"""A batch: the changes of one user action, validated together and committed as one frame.

Every ``put`` is checked against the register as the batch has changed it so far, so a flow may
refer to a member made earlier in the same batch. If anything raises inside ``with
store.batch()``, nothing is written.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .errors import Issue, NotFound, ValidationError
from .ids import new_ulid
from .schema import TYPES
from .validate import check_record, coerce, issue

if TYPE_CHECKING:
    from .store import Store


class Batch:
    def __init__(self, store: Store, today: dt.date | None = None) -> None:
        self.store = store
        self.today = today or dt.date.today()
        self._pending: dict[str, dict[str, Any]] = {}  # rec_id → record as it will be
        self._changes: dict[str, dict[str, Any]] = {}  # rec_id → {"type", "set", "deleted"}

    def lookup(self, rec_id: str) -> dict[str, Any] | None:
        if rec_id in self._pending:
            doc = self._pending[rec_id]
            return None if doc.get("deleted") else doc
        return self.store.get(rec_id)

    def put(self, type_name: str, values: dict[str, Any], rec_id: str | None = None) -> str:
        """Create (no ``rec_id``) or change a record; returns its id. Raises ValidationError with
        every broken rule; fields absent from ``values`` keep their value, ``None`` clears."""
        rtype = TYPES[type_name]
        issues = []
        coerced: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in rtype.by_name:
                issues.append(issue(name, "unknown_field"))
                continue
            value = coerce(rtype[name], raw, self.today)
            if isinstance(value, Issue):
                issues.append(value)
            else:
                coerced[name] = value
        if rec_id is None:
            rec_id = new_ulid()
            current: dict[str, Any] = {}
        else:
            found = self.lookup(rec_id)
            if found is None or found.get("type") != type_name:
                raise NotFound(rtype.zh, rtype.en, rec_id)
            current = found
        merged = {k: v for k, v in current.items() if k in rtype.by_name}
        for name, value in coerced.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        if not issues:
            issues = check_record(rtype, merged, self.lookup, self.today)
        if issues:
            raise ValidationError(issues)
        changed = {k: v for k, v in coerced.items() if current.get(k) != v}
        if current and not changed:
            return rec_id
        if not current:
            changed = {k: v for k, v in coerced.items() if v is not None}
        change = self._changes.setdefault(rec_id, {"type": type_name, "set": {},
                                                   "deleted": False})
        change["set"].update(changed)
        self._pending[rec_id] = {**merged, "id": rec_id, "type": type_name}
        return rec_id

    def delete(self, rec_id: str) -> None:
        found = self.lookup(rec_id)
        if found is None:
            raise NotFound("记录", "record", rec_id)
        change = self._changes.setdefault(rec_id, {"type": found["type"], "set": {},
                                                   "deleted": False})
        change["deleted"] = True
        self._pending[rec_id] = {**found, "deleted": True}

    @property
    def empty(self) -> bool:
        return not self._changes

    def changes(self) -> list[tuple[str, str, dict[str, Any], bool]]:
        return [(rid, c["type"], c["set"], c["deleted"]) for rid, c in self._changes.items()]
