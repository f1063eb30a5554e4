"""Indexes over the state, by reference, updated with every change (DESIGN §2.4).

- ``by_member``: member id → ids of the records about it (flows, contacts, …; deleted ones too);
- ``by_id_number``: ID number → the live member holding it;
- ``open_flows``: member id → ids of its live flows that have not ended;
- ``meetings``: member id → ids of the live meetings it attended or missed;
- ``order``: live members sorted by (pinyin of the name, name, id), kept sorted by bisection;
- what the worklist's rules read per member (store/rules.py), so that a worklist makes no pass
  over every contact, appraisal and transfer: ``open_flow`` (member → its open flow, the latest
  left), ``last_reached`` (member → the date of its latest reached contact), ``appraised``
  (member → the years it has an appraisal for), ``transferring`` (member → its drafted, issued
  or received transfers), ``lost_since`` and ``probation_ends`` (live member →
  ``lost_contact_since``, ``probation_ends_on`` of a probationary member), ``receipts_due``
  (issued transfers without a receipt → their member). A member's entry is worked out again
  from its own records (``by_member``) when one of them changes: a few records, not a table;
- ``member_log``: the members whose records changed, in order, so that a worklist kept from
  before (store/rules_index.py) works out again only theirs; ``shared_revision`` moves when
  what every member's items depend on changes (an organization, a rebuild), and
  ``meeting_revision`` when a meeting does.

Sets are frozen and replaced, never changed in place, so a reader iterating one while another
thread commits sees one consistent version; a reader iterates a dict through a copy taken in
one C call (``dict(...)``, ``list(d.items())``). The store's lock serializes writers.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

EMPTY: frozenset[str] = frozenset()
ACTIVE_TRANSFER = frozenset({"draft", "issued", "received"})  # a transfer under way or done
LOG_KEPT = 4096  # entries of the member log kept: a reader further behind starts again
Data = Mapping[str, Mapping[str, Mapping[str, Any]]]


# What one member's live records of a type give the rules (None: nothing). ``rebuild`` and
# ``change`` both use these, so an incremental index cannot drift from a rebuilt one.
def _open_flow(docs: list[Mapping[str, Any]]) -> str | None:
    found = [d for d in docs if d.get("status") != "ended"]
    return max(found, key=lambda d: (d.get("left_on") or "", d["id"]))["id"] if found else None


def _last_reached(docs: list[Mapping[str, Any]]) -> str | None:
    return max((d["on"] for d in docs if d.get("reached") and d.get("on")), default=None)


def _appraised(docs: list[Mapping[str, Any]]) -> frozenset[Any] | None:
    return frozenset(d.get("year") for d in docs) or None


def _transferring(docs: list[Mapping[str, Any]]) -> frozenset[str] | None:
    return frozenset(d["id"] for d in docs if d.get("status") in ACTIVE_TRANSFER) or None


# record type → (the index, what a member's live records of the type give it)
MEMBER_FACTS: dict[str, tuple[str, Callable[[list[Mapping[str, Any]]], Any]]] = {
    "flow": ("open_flow", _open_flow), "contact": ("last_reached", _last_reached),
    "appraisal": ("appraised", _appraised), "transfer": ("transferring", _transferring)}


def _receipt_due(doc: Mapping[str, Any] | None) -> bool:
    """An issued transfer letter whose receipt has not come back (store/rules.py)."""
    return doc is not None and not doc.get("deleted") and doc.get("status") == "issued" and \
        not doc.get("received_on") and bool(doc.get("issued_on"))


def _member_values(doc: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(lost_contact_since, probation_ends_on of a probationary member) of a live member."""
    if doc is None or doc.get("deleted"):
        return None, None
    ends = doc.get("probation_ends_on") if doc.get("standing") == "probationary" else None
    return doc.get("lost_contact_since") or None, ends or None


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
    def __init__(self, data: Data | None = None) -> None:
        self.data: Data = data if data is not None else {}  # the state's tables, by reference
        # moves with every change: what is worked out from the indexes can be kept per revision
        self.revision = 0
        self.shared_revision = 0
        self.meeting_revision = 0
        # (position of the first entry since the store opened, the member ids); the list is
        # only appended to, and replaced whole when cut short
        self.member_log: tuple[int, list[str]] = (0, [])
        self.by_member: dict[str, frozenset[str]] = {}
        self.by_id_number: dict[str, str] = {}
        self.id_holders: dict[str, frozenset[str]] = {}
        self.open_flows: dict[str, frozenset[str]] = {}
        self.meetings: dict[str, frozenset[str]] = {}
        self.open_flow: dict[str, str] = {}
        self.last_reached: dict[str, str] = {}
        self.appraised: dict[str, frozenset[Any]] = {}
        self.transferring: dict[str, frozenset[str]] = {}
        self.lost_since: dict[str, str] = {}
        self.probation_ends: dict[str, str] = {}
        self.receipts_due: dict[str, str] = {}
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

    @staticmethod
    def _set(index: dict[str, Any], key: str, value: Any) -> None:
        if value is None:
            index.pop(key, None)
        elif index.get(key) != value:
            index[key] = value

    def _member_fact(self, type_name: str, member_id: str) -> None:
        """Work out again what ``member_id``'s live records of ``type_name`` give the rules."""
        name, fact = MEMBER_FACTS[type_name]
        table = self.data.get(type_name, {})
        docs = [d for i in self.by_member.get(member_id, EMPTY)
                if (d := table.get(i)) is not None and not d.get("deleted")]
        self._set(getattr(self, name), member_id, fact(docs))

    def _add_fact(self, type_name: str, member_id: str, new: Mapping[str, Any]) -> None:
        """``_member_fact`` for a record just made, without reading the member's others (a
        contact logged is the commonest commit)."""
        if new.get("deleted"):
            return
        if type_name == "contact":
            on = new.get("on")
            if new.get("reached") and on and on > self.last_reached.get(member_id, ""):
                self.last_reached[member_id] = on
        elif type_name == "appraisal":
            years = self.appraised.get(member_id, frozenset())
            if new.get("year") not in years:
                self.appraised[member_id] = years | {new.get("year")}
        elif type_name == "transfer":
            if new.get("status") in ACTIVE_TRANSFER:
                self._add(self.transferring, member_id, new["id"])
        else:
            self._member_fact(type_name, member_id)

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
        """Record ``rec_id`` went from ``old`` to ``new`` (None: absent, or purged); the
        state's tables already hold ``new``."""
        self._change(type_name, rec_id, old, new, keys, member_records)
        # Last, once every index holds the change: a reader that sees the new revision or the
        # log entry sees the change; one that read them before will see them move.
        if type_name in member_records:
            old_member = (old or {}).get("member_id")
            new_member = (new or {}).get("member_id")
            self._log(old_member, new_member if new_member != old_member else None)
        elif type_name == "member":
            self._log(rec_id)
        elif type_name == "org":
            self.shared_revision += 1
        elif type_name == "meeting":
            self.meeting_revision += 1
        self.revision += 1

    def _change(self, type_name: str, rec_id: str, old: Mapping[str, Any] | None,
                new: Mapping[str, Any] | None, keys: str | None, member_records: Iterable[str],
                ) -> None:
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
            if type_name in MEMBER_FACTS:
                if old is None and new_member:  # a new record only adds to its member's entry
                    self._add_fact(type_name, new_member, new)  # type: ignore[arg-type]
                else:
                    for member_id in {old_member, new_member} - {None}:
                        self._member_fact(type_name, member_id)  # type: ignore[arg-type]
            if type_name == "transfer":
                self._set(self.receipts_due, rec_id, new_member if new_member and
                          _receipt_due(new) else None)
        elif type_name == "member":
            live = new is not None and not new.get("deleted")
            self._index_id_number(rec_id, (old or {}).get("id_number"),
                                  new.get("id_number") if live else None)  # type: ignore[union-attr]
            if self.order_ready:
                self._set_order(rec_id, order_key(new, keys) if live else None)  # type: ignore[arg-type]
            lost, ends = _member_values(new)
            self._set(self.lost_since, rec_id, lost)
            self._set(self.probation_ends, rec_id, ends)
        elif type_name == "meeting":
            before, after = meeting_people(old), meeting_people(new)
            for member_id in before - after:
                self._remove(self.meetings, member_id, rec_id)
            for member_id in after - before:
                self._add(self.meetings, member_id, rec_id)

    def _log(self, member_id: str | None, other: str | None = None) -> None:
        base, log = self.member_log
        if member_id:
            log.append(member_id)
        if other:
            log.append(other)
        if len(log) > 2 * LOG_KEPT:
            self.member_log = (base + len(log) - LOG_KEPT, log[-LOG_KEPT:])

    def rebuild(self, data: Mapping[str, Mapping[str, Mapping[str, Any]]],
                search: Mapping[str, str], member_records: Iterable[str]) -> None:
        """Every index from scratch (on open, and after an alias rewrote references)."""
        self.data = data
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
        self._rebuild_rules(data)
        self.order_ready, self.order, self.order_of = False, [], {}
        self._order_version += 1
        self.revision += 1  # last, as in ``change``
        self.shared_revision += 1
        self.meeting_revision += 1

    def _rebuild_rules(self, data: Data) -> None:
        for type_name, (name, fact) in MEMBER_FACTS.items():
            docs: dict[str, list[Mapping[str, Any]]] = {}
            for doc in data.get(type_name, {}).values():
                if doc.get("member_id") and not doc.get("deleted"):
                    docs.setdefault(doc["member_id"], []).append(doc)
            found = {member_id: fact(mine) for member_id, mine in docs.items()}
            setattr(self, name, {k: v for k, v in found.items() if v is not None})
        self.receipts_due = {rec_id: doc["member_id"] for rec_id, doc in
                             data.get("transfer", {}).items()
                             if doc.get("member_id") and _receipt_due(doc)}
        lost_since, probation_ends = {}, {}
        for rec_id, doc in data.get("member", {}).items():
            lost, ends = _member_values(doc)
            if lost is not None:
                lost_since[rec_id] = lost
            if ends is not None:
                probation_ends[rec_id] = ends
        self.lost_since, self.probation_ends = lost_since, probation_ends

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
                "order": list(self.order), "open_flow": dict(self.open_flow),
                "last_reached": dict(self.last_reached), "appraised": dict(self.appraised),
                "transferring": dict(self.transferring), "lost_since": dict(self.lost_since),
                "probation_ends": dict(self.probation_ends),
                "receipts_due": dict(self.receipts_due)}
