"""Indexes over the state, by reference, updated with every change (DESIGN §2.4).

- ``by_member``: member id → ids of the records about it (flows, contacts, …; deleted ones too);
- ``by_id_number``: ID number → the live member holding it;
- ``open_flows``: member id → ids of its live flows that have not ended;
- ``meetings``: member id → ids of the live meetings it attended or missed;
- ``order``: live members sorted by (pinyin of the name, name, id), kept sorted by bisection.

Sets are frozen and replaced, never changed in place, so a reader iterating one while another
thread commits sees one consistent version. The store's lock serializes writers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

EMPTY: frozenset[str] = frozenset()


def order_key(doc: Mapping[str, Any], keys: str | None) -> tuple[str, str, str]:
    """Where a member sorts: the first reading of its name (from its search keys, which hold
    it second, after the name itself), then the name, then the id."""
    name = str(doc.get("name") or "")
    reading = ""
    if name and keys:
        parts = keys.split("\0", 2)
        reading = parts[1] if len(parts) > 1 else ""
    return (reading, name, str(doc["id"]))


def meeting_people(doc: Mapping[str, Any] | None) -> set[str]:
    if doc is None or doc.get("deleted"):
        return set()
    people = set(doc.get("attendee_ids") or ())
    people.update(a.get("member_id") for a in doc.get("absences") or () if isinstance(a, Mapping)
                  and a.get("member_id"))
    return people


class Indexes:
    def __init__(self) -> None:
        self.by_member: dict[str, frozenset[str]] = {}
        self.by_id_number: dict[str, str] = {}
        self.id_holders: dict[str, frozenset[str]] = {}
        self.open_flows: dict[str, frozenset[str]] = {}
        self.meetings: dict[str, frozenset[str]] = {}
        self.order: list[tuple[str, str, str]] = []
        self.order_of: dict[str, tuple[str, str, str]] = {}
        # The list order is built when first asked for (``ensure_order``), not at open: a
        # store opened for a command, or an interface that never shows the members list,
        # does not pay for it (0.3 s at 20,000 members with the replay of the journal).
        self.order_ready = False
        # The ids of ``order`` as of a version; the version moves after each change of it.
        self._order_version = 0
        self._order_ids: tuple[int, tuple[str, ...]] = (-1, ())

    # -- small helpers -----------------------------------------------------------------------
    @staticmethod
    def _add(index: dict[str, frozenset[str]], key: str, rec_id: str) -> None:
        found = index.get(key, EMPTY)
        if rec_id not in found:
            index[key] = found | {rec_id}

    @staticmethod
    def _remove(index: dict[str, frozenset[str]], key: str, rec_id: str) -> None:
        found = index.get(key)
        if found is not None and rec_id in found:
            rest = found - {rec_id}
            if rest:
                index[key] = rest
            else:
                del index[key]

    def _index_id_number(self, rec_id: str, old: str | None, new: str | None) -> None:
        """Should two live members hold one number (the server may send such a pair), the
        smaller id answers, whatever order they came in."""
        if old == new:
            return
        for number in (old, new):
            if not number:
                continue
            if number == old:
                self._remove(self.id_holders, number, rec_id)
            else:
                self._add(self.id_holders, number, rec_id)
            holders = self.id_holders.get(number)
            if holders:
                self.by_id_number[number] = min(holders)
            else:
                self.by_id_number.pop(number, None)

    def _set_order(self, rec_id: str, key: tuple[str, str, str] | None) -> None:
        old = self.order_of.get(rec_id)
        if old == key:
            return
        if old is not None:
            i = bisect.bisect_left(self.order, old)
            if i < len(self.order) and self.order[i] == old:
                del self.order[i]
            del self.order_of[rec_id]
        if key is not None:
            bisect.insort(self.order, key)
            self.order_of[rec_id] = key
        self._order_version += 1

    # -- one change --------------------------------------------------------------------------
    def change(self, type_name: str, rec_id: str, old: Mapping[str, Any] | None,
               new: Mapping[str, Any] | None, keys: str | None, member_records: Iterable[str],
               ) -> None:
        """Record ``rec_id`` went from ``old`` to ``new`` (None: absent, or purged)."""
        if type_name in member_records:
            old_member = (old or {}).get("member_id")
            new_member = (new or {}).get("member_id")
            if old_member and old_member != new_member:
                self._remove(self.by_member, old_member, rec_id)
            if new_member:
                self._add(self.by_member, new_member, rec_id)
            if type_name == "flow":
                if old_member:
                    self._remove(self.open_flows, old_member, rec_id)
                if new_member and not new.get("deleted") and new.get("status") != "ended":  # type: ignore[union-attr]
                    self._add(self.open_flows, new_member, rec_id)
        elif type_name == "member":
            live = new is not None and not new.get("deleted")
            self._index_id_number(rec_id, (old or {}).get("id_number"),
                                  new.get("id_number") if live else None)  # type: ignore[union-attr]
            if self.order_ready:
                self._set_order(rec_id, order_key(new, keys) if live else None)  # type: ignore[arg-type]
        elif type_name == "meeting":
            before, after = meeting_people(old), meeting_people(new)
            for member_id in before - after:
                self._remove(self.meetings, member_id, rec_id)
            for member_id in after - before:
                self._add(self.meetings, member_id, rec_id)

    def rebuild(self, data: Mapping[str, Mapping[str, Mapping[str, Any]]],
                search: Mapping[str, str], member_records: Iterable[str]) -> None:
        """Every index from scratch (on open, and after an alias rewrote references)."""
        by_member: dict[str, set[str]] = {}
        open_flows: dict[str, set[str]] = {}
        meetings: dict[str, set[str]] = {}
        for type_name in member_records:
            for rec_id, doc in data.get(type_name, {}).items():
                member_id = doc.get("member_id")
                if member_id:
                    by_member.setdefault(member_id, set()).add(rec_id)
                    if type_name == "flow" and not doc.get("deleted") and \
                            doc.get("status") != "ended":
                        open_flows.setdefault(member_id, set()).add(rec_id)
        for rec_id, doc in data.get("meeting", {}).items():
            for member_id in meeting_people(doc):
                meetings.setdefault(member_id, set()).add(rec_id)
        self.by_member = {k: frozenset(v) for k, v in by_member.items()}
        self.open_flows = {k: frozenset(v) for k, v in open_flows.items()}
        self.meetings = {k: frozenset(v) for k, v in meetings.items()}
        holders: dict[str, set[str]] = {}
        for rec_id, doc in data.get("member", {}).items():
            if not doc.get("deleted") and doc.get("id_number"):
                holders.setdefault(doc["id_number"], set()).add(rec_id)
        self.id_holders = {k: frozenset(v) for k, v in holders.items()}
        self.by_id_number = {k: min(v) for k, v in holders.items()}
        self.order_ready, self.order, self.order_of = False, [], {}
        self._order_version += 1

    def ensure_order(self, members: Mapping[str, Mapping[str, Any]],
                     search: Mapping[str, str]) -> None:
        """Build the list order now if it is not built (the caller holds the store's lock, so
        no change slips between the build and the first incremental update)."""
        if self.order_ready:
            return
        self.order_of = {rec_id: order_key(doc, search.get(rec_id))
                         for rec_id, doc in members.items() if not doc.get("deleted")}
        self.order = sorted(self.order_of.values())
        self.order_ready = True
        self._order_version += 1

    def order_ids(self) -> list[str]:
        """Live member ids in list order (kept between changes; a new list each call)."""
        version, ids = self._order_ids
        if version != self._order_version:
            version = self._order_version  # read before the copy: a change meanwhile moves it
            ids = tuple(key[2] for key in tuple(self.order))
            self._order_ids = (version, ids)
        return list(ids)

    def snapshot(self) -> dict[str, Any]:
        """Comparable contents, for tests (a rebuild must equal the incremental result)."""
        return {"by_member": dict(self.by_member), "by_id_number": dict(self.by_id_number),
                "open_flows": dict(self.open_flows), "meetings": dict(self.meetings),
                "order": list(self.order)}
