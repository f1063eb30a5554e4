"""The workflows of the policy, as the store runs them whatever the way in (the command line, a
form of the interface, an import): what a step fills in by itself and what follows from it.

- Transfer of membership (M-1.4): ``draft → issued → received | returned``, a draft or an issued
  letter may be cancelled (the steps are the schema's, ``TRANSFER_STEPS``). Issuing fills in the
  date, the letter number, the validity and the receipt's due date (one month after issue).
  Recording the receipt ends the member's open flow and hands the member over to the receiving
  organization (or, outside the system, archives the member as transferred), in the same commit.
- Probation (M-2.2c): a review is due when probation ends; the host side writes its conduct
  report; the decision (taken by the branch congress, approved by a committee that may approve
  probationary members) converts the member, extends probation to a date within a year, or
  cancels the probationary membership — the member record follows in the same commit.
- Appraisal (M-2.3e, M-4.2): recorded by the host or mobile-member organization; when it reaches
  the member's home side, the home's device notes the date (``acknowledge_appraisals``, run
  after each sync).

``derive`` and ``follow`` are called by :class:`store.batch.Batch` for every ``put``; the rest
are the named steps the command line and the interface offer. Pure: no I/O beyond the store.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .errors import LiudongError, NotFound
from .rules import add_months

if TYPE_CHECKING:
    from .batch import Batch
    from .store import Store

# The validity a letter gets unless told otherwise (days).
VALID_DAYS = 30
OPEN_TRANSFER = ("draft", "issued")


class WorkflowError(LiudongError):
    """A step the record's state does not allow (said before anything is written)."""

    exit_code = 1


# -- called by Batch.put -------------------------------------------------------------------------

def derive(batch: Batch, type_name: str, current: dict[str, Any],
           merged: dict[str, Any]) -> dict[str, Any]:
    """Values a step fills in by itself, where the person gave none."""
    out: dict[str, Any] = {}
    if type_name == "transfer":
        if not current:
            member = batch.lookup(str(merged.get("member_id")))
            if member is not None and not merged.get("from_org_id") and \
                    member.get("home_org_id"):
                out["from_org_id"] = member["home_org_id"]
            if not merged.get("status"):
                out["status"] = "draft"
        status = merged.get("status") or out.get("status")
        if status == "issued" and current.get("status") != "issued":
            issued = merged.get("issued_on") or batch.today.isoformat()
            out.setdefault("issued_on", issued)
            if not merged.get("receipt_due_on"):
                out["receipt_due_on"] = add_months(dt.date.fromisoformat(issued), 1).isoformat()
            if merged.get("valid_days") is None:
                out["valid_days"] = VALID_DAYS
            if not merged.get("letter_no"):
                out["letter_no"] = next_letter_no(batch, merged.get("from_org_id")
                                                  or out.get("from_org_id"), issued)
        if status == "received" and not merged.get("received_on"):
            out["received_on"] = batch.today.isoformat()
    elif type_name == "probation_review" and not current and not merged.get("due_on"):
        member = batch.lookup(str(merged.get("member_id")))
        if member is not None and member.get("probation_ends_on"):
            out["due_on"] = member["probation_ends_on"]
    return {k: v for k, v in out.items() if merged.get(k) != v}


def follow(batch: Batch, type_name: str, rec_id: str, current: dict[str, Any],
           merged: dict[str, Any]) -> None:
    """What follows from a step, in the same batch (and so the same commit)."""
    if type_name == "transfer" and merged.get("status") == "received" and \
            current.get("status") != "received":
        _hand_over(batch, merged)
    elif type_name == "probation_review" and merged.get("decision") and \
            not current.get("decision"):
        member_id = str(merged["member_id"])
        decision = merged["decision"]
        if decision == "converted":
            batch.put("member", {"standing": "full"}, member_id)
        elif decision == "extended":
            batch.put("member", {"probation_ends_on": merged["extended_until"]}, member_id)
        elif decision == "cancelled":
            batch.put("member", {"archived": "disqualified"}, member_id)


def _hand_over(batch: Batch, transfer: dict[str, Any]) -> None:
    """The receipt came back: the member's flow ends (transferred) and the membership moves."""
    member_id = str(transfer["member_id"])
    on = transfer["received_on"]
    for flow in batch.flows_of(member_id):
        if flow.fields.get("status") != "ended":
            ended = max(on, flow.fields.get("left_on") or on)
            batch.put("flow", {"status": "ended", "ended_on": ended,
                               "end_reason": "transferred"}, flow.rec_id)
    if transfer.get("to_org_id"):
        batch.put("member", {"home_org_id": transfer["to_org_id"], "archived": None}, member_id)
    else:
        batch.put("member", {"archived": "transferred"}, member_id)


def next_letter_no(batch: Batch, org_id: str | None, issued_on: str) -> str:
    """The next letter number of the issuing organization for the year: ``2026-007``."""
    year = issued_on[:4]
    taken = {str(t.get("letter_no")) for t in batch.state.live("transfer")
             if t.get("from_org_id") == org_id and t.get("letter_no")}
    taken |= {str(d.get("letter_no")) for d in batch.pending("transfer")
              if d.get("from_org_id") == org_id and d.get("letter_no")}
    n = 1 + sum(1 for no in taken if no.startswith(year + "-"))
    while f"{year}-{n:03d}" in taken:
        n += 1
    return f"{year}-{n:03d}"


# -- the named steps -------------------------------------------------------------------------

def _record(store: Store, rec_id: str, type_name: str, zh: str, en: str) -> dict[str, Any]:
    doc = store.get(rec_id)
    if doc is None or doc["type"] != type_name:
        raise NotFound(zh, en, rec_id)
    return doc


def open_transfers(store: Store, member_id: str) -> list[dict[str, Any]]:
    return [t for t in store.state.records_of(member_id, "transfer")
            if t.get("status") in OPEN_TRANSFER]


def draft_transfer(store: Store, member_id: str, values: dict[str, Any]) -> str:
    """Start a transfer of the member's formal membership (M-1.4): a draft, not yet a letter."""
    member = _record(store, member_id, "member", "党员", "member")
    if open_transfers(store, member_id):
        raise WorkflowError(f"{member['name']} 已有未办结的组织关系转接，请先办结或作废它",
                            f"{member['name']} already has a transfer under way: finish or "
                            "cancel it first")
    return store.put("transfer", {"member_id": member_id, "status": "draft", **values})


def _step(store: Store, transfer_id: str, status: str, values: dict[str, Any]) -> None:
    _record(store, transfer_id, "transfer", "组织关系转接", "transfer")
    store.put("transfer", {**values, "status": status}, transfer_id)


def issue_transfer(store: Store, transfer_id: str, values: dict[str, Any] | None = None) -> None:
    """Issue the letter: its number, date, validity and receipt due date are fixed from now."""
    _step(store, transfer_id, "issued", values or {})


def receive_transfer(store: Store, transfer_id: str, on: str | None = None) -> None:
    """The receipt came back: the membership moves to the receiving organization."""
    _step(store, transfer_id, "received", {"received_on": on} if on else {})


def return_transfer(store: Store, transfer_id: str) -> None:
    """The letter came back unused (the receiving organization did not take the member)."""
    _step(store, transfer_id, "returned", {})


def cancel_transfer(store: Store, transfer_id: str) -> None:
    _step(store, transfer_id, "cancelled", {})


def open_review(store: Store, member_id: str, values: dict[str, Any] | None = None) -> str:
    """A probation review for the member, due when probation ends (M-2.2c)."""
    member = _record(store, member_id, "member", "党员", "member")
    pending = [r for r in store.state.records_of(member_id, "probation_review")
               if not r.get("decision")]
    if pending:
        raise WorkflowError(f"{member['name']} 已有待决定的转正审查", f"{member['name']} already "
                            "has a probation review awaiting its decision")
    return store.put("probation_review", {"member_id": member_id, **(values or {})})


def decide_probation(store: Store, review_id: str, values: dict[str, Any]) -> None:
    """The decision on conversion; the member's standing follows in the same commit."""
    _record(store, review_id, "probation_review", "转正审查", "probation review")
    store.put("probation_review", values, review_id)


def acknowledge_appraisals(store: Store, today: dt.date | None = None) -> int:
    """Note the day appraisals written by another organization reached the member's home side
    (M-4.2). Returns how many were noted; nothing when this store is no member's home."""
    subtree = store.state.own_subtree()
    if not subtree:
        return 0
    due = []
    for a in store.live("appraisal"):
        if a.get("notified_home_on") or a.get("by_org_id") in subtree:
            continue
        member = store.get(str(a.get("member_id")))
        if member is not None and member.get("home_org_id") in subtree:
            due.append(a["id"])
    if not due:
        return 0
    on = (today or dt.date.today()).isoformat()
    with store.batch(today) as b:
        for rec_id in due:
            b.put("appraisal", {"notified_home_on": on}, rec_id)
    return len(due)
