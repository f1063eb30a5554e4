"""A batch: the changes of one user action, validated together and committed as one frame.

Every ``put`` is checked against the register as the batch has changed it so far, so a flow may
refer to a member made earlier in the same batch. It is checked twice: by the schema's rules
(``validate.py``) and by scope and ownership (``scope.py``), the same rules the county server
applies, so an edit the server would refuse is refused here, as it is typed. If anything raises
inside ``with store.batch()``, nothing is written.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from . import workflows
from .errors import Forbidden, Issue, NotFound, ValidationError
from .ids import new_ulid
from .record import Rec
from .schema import TYPES
from .scope import refusal
from .validate import check_record, coerce, id_birth_date, id_gender, issue

if TYPE_CHECKING:
    from .store import Store


class Batch:
    def __init__(self, store: Store, today: dt.date | None = None) -> None:
        self.store = store
        self.state = store.state
        self.today = today or dt.date.today()
        self._pending: dict[str, dict[str, Any]] = {}  # rec_id → record as it will be
        # what the rules look up among the pending records, kept as they are put (an import of
        # 10,000 members is one batch: a scan per put would make it quadratic)
        self._pending_numbers: dict[str, set[str]] = {}  # ID number → members
        self._pending_flows: dict[str, set[str]] = {}  # member → flows
        self._changes: dict[str, dict[str, Any]] = {}  # rec_id → {"type", "set", "deleted"}

    # -- the register as the rules see it, with this batch's changes ----------------------------
    def lookup(self, rec_id: str) -> dict[str, Any] | None:
        if rec_id in self._pending:
            doc = self._pending[rec_id]
            return None if doc.get("deleted") else doc
        return self.state.get(rec_id)

    def stored(self, rec_id: str) -> dict[str, Any] | None:
        """The record as the store holds it, before this batch: a batch becomes one op per
        record, which the county server judges against this (a workflow's steps)."""
        return self.state.get(rec_id)

    def load(self, rec_id: str) -> Rec | None:
        if rec_id in self._pending:
            doc = self._pending[rec_id]
            rtype = TYPES[doc["type"]]
            return Rec(rec_id, doc["type"], {k: v for k, v in doc.items() if k in rtype.by_name},
                       deleted=bool(doc.get("deleted")),
                       writer_org_id=self.store.meta.get("own_org_id"))
        return self.state.load(rec_id)

    def flows_of(self, member_id: str) -> list[Rec]:
        flows = {f.rec_id: f for f in self.state.flows_of(member_id)}
        for rec_id in sorted(self._pending_flows.get(member_id, ())):
            if self._pending[rec_id].get("member_id") == member_id:
                found = self.load(rec_id)
                if found is not None and not found.deleted:
                    flows[rec_id] = found
                else:
                    flows.pop(rec_id, None)
        return list(flows.values())

    def subtree(self, org_id: str) -> set[str]:
        return self.state.subtree(org_id)

    def id_number_holder(self, number: str, rec_id: str) -> tuple[str, str] | None:
        holders = [self.state.by_id_number.get(number),
                   *sorted(self._pending_numbers.get(number, ()))]
        for holder in holders:
            doc = self.lookup(holder) if holder and holder != rec_id else None
            if doc is not None and doc.get("id_number") == number:
                shown = f"{doc.get('name')}（…{holder[-8:]}）"
                return f"党员 {shown}", f"member {shown}"
        return None

    # -- changes -------------------------------------------------------------------------------
    def put(self, type_name: str, values: dict[str, Any], rec_id: str | None = None) -> str:
        """Create (no ``rec_id``) or change a record; returns its id. Raises ValidationError with
        every broken rule, Forbidden when scope or ownership refuses it; fields absent from
        ``values`` keep their value, ``None`` clears."""
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
        if type_name == "member" and coerced.get("id_number"):
            coerced.update(_from_id_number(coerced["id_number"], merged, current, coerced))
            merged.update(coerced)
        if type_name == "flow" and not current and "home_org_id" not in coerced:
            # a flow leaves from the member's home, recorded as it is when the flow is made
            member = self.lookup(str(merged.get("member_id")))
            if member is not None and member.get("home_org_id"):
                coerced["home_org_id"] = merged["home_org_id"] = member["home_org_id"]
        if not issues:
            derived = workflows.derive(self, type_name, current, merged)
            coerced.update(derived)
            merged.update(derived)
            issues = check_record(rtype, merged, self, self.today, rec_id)
        if issues:
            raise ValidationError(issues)
        changed = {k: v for k, v in coerced.items() if current.get(k) != v}
        if current and not changed:
            return rec_id
        if not current:
            changed = {k: v for k, v in coerced.items() if v is not None}
        self._authorize(type_name, rec_id, merged, changed, deleted=False)
        prior = self._changes.get(rec_id)
        if prior is not None:
            # A second change to one record in a batch: the county server receives one op
            # with both, and judges it against the record as it was before the batch. Judge
            # it so here too, so that nothing accepted here is refused there.
            self._authorize(type_name, rec_id, merged, {**prior["set"], **changed},
                            deleted=False, before_batch=True)
        change = self._changes.setdefault(rec_id, {"type": type_name, "set": {},
                                                   "deleted": False})
        change["set"].update(changed)
        self._keep(rec_id, {**merged, "id": rec_id, "type": type_name})
        workflows.follow(self, type_name, rec_id, current, merged)
        return rec_id

    def pending(self, type_name: str) -> list[dict[str, Any]]:
        """The records of a type this batch made or changed, as they will be."""
        return [d for d in self._pending.values() if d["type"] == type_name]

    def delete(self, rec_id: str) -> None:
        found = self.lookup(rec_id)
        if found is None:
            raise NotFound("记录", "record", rec_id)
        rtype = TYPES[found["type"]]
        self._authorize(found["type"], rec_id, {k: v for k, v in found.items()
                                                if k in rtype.by_name}, {}, deleted=True)
        change = self._changes.setdefault(rec_id, {"type": found["type"], "set": {},
                                                   "deleted": False})
        change["deleted"] = True
        self._keep(rec_id, {**found, "deleted": True})

    def _keep(self, rec_id: str, doc: dict[str, Any]) -> None:
        self._pending[rec_id] = doc
        if doc["type"] == "member" and doc.get("id_number"):
            self._pending_numbers.setdefault(doc["id_number"], set()).add(rec_id)
        elif doc["type"] == "flow" and doc.get("member_id"):
            self._pending_flows.setdefault(doc["member_id"], set()).add(rec_id)

    def _authorize(self, type_name: str, rec_id: str, merged: dict[str, Any],
                   changed: dict[str, Any], deleted: bool, before_batch: bool = False) -> None:
        """Scope and ownership, as the county server will judge the op (DESIGN §3.3): against
        the record as this batch left it so far, or (``before_batch``) as it was before it."""
        own = self.store.meta.get("own_org_id")
        if not own:
            return  # a store made without an organization of its own: nothing to judge by
        before = self.state.load(rec_id) if before_batch else self.load(rec_id)
        after = Rec(rec_id, type_name, dict(merged), deleted=deleted,
                    writer_org_id=before.writer_org_id if before is not None else own)
        refused = refusal(self, before, after, changed, deleted, self.state.subtree(own))
        if refused is not None:
            raise Forbidden(type_name, refused)

    @property
    def empty(self) -> bool:
        return not self._changes

    def changes(self) -> list[tuple[str, str, dict[str, Any], bool]]:
        return [(rid, c["type"], c["set"], c["deleted"]) for rid, c in self._changes.items()]


def _from_id_number(number: str, member: dict[str, Any], current: dict[str, Any],
                    typed: dict[str, Any]) -> dict[str, Any]:
    """Birth date and gender as the ID number holds them, where they were not typed: for a
    member that lacks them, or whose values came from the ID number it had before."""
    old = current.get("id_number")
    old_born = id_birth_date(old) if old else None
    out: dict[str, Any] = {}
    born = id_birth_date(number)
    if born is not None and "birth_date" not in typed and (
            not member.get("birth_date") or (old_born and member["birth_date"] ==
                                             old_born.isoformat())):
        out["birth_date"] = born.isoformat()
    if "gender" not in typed and (not member.get("gender") or (
            old and member["gender"] == id_gender(old))):
        out["gender"] = id_gender(number)
    return out
