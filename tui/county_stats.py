"""Statistics per organization and the state of county tasks, computed on the spot from the
store (M-5.1 statistics shared, M-5.4 tasks sent down and answers sent up). Pure: no Textual,
no I/O; the county view (tui/screens/county.py) draws what these functions return.

The time limits are the worklist's (``store.rules.Thresholds``), and contact due, lost contact
and missing appraisals are counted from the worklist's own items (``store.rules.worklist``), so
a member counted here as "contact due" is one the worklist lists. Each organization's row counts its whole subtree (as ``liudong admin stats``
does): the own organization's row is the total.

Which organization a mobile member counts for:
- outflow, reported / pending report: the flow's home organization;
- inflow: the flow's host organization;
- contact due, lost contact, appraisal coverage: the organization responsible for the member,
  the home organization when it lies in this store's subtree, else the host (an inflow member
  whose home is elsewhere). A member without an open flow counts as lost when the home has
  marked it so (``lost_contact_since``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from store.rules import Thresholds, worklist
from store.search import name_readings

# Organization kinds that have organizations below them: their store shows one row per org.
UPPER_KINDS = frozenset({"province", "city", "county", "committee"})


@dataclass(frozen=True)
class OrgStats:
    """One organization's numbers (its whole subtree)."""

    org_id: str
    name: str
    kind: str
    depth: int  # 0 for the store's own organization
    members: int = 0  # live members whose home is here, archived ones left out
    outflow: int = 0  # open flows leaving from here
    inflow: int = 0  # open flows hosted here
    reported: int = 0  # outflow flows whose member reported in to the host
    pending: int = 0  # outflow flows still pending report
    report_overdue: int = 0  # … of which more than ``report_days`` after leaving (M-1.2)
    contact_due: int = 0  # not reached for 90 days (180 studying abroad), not yet lost (M-2.2b)
    lost: int = 0  # lost contact: 6 months without a reached contact, or marked lost (M-2.2b)
    appraisal_due: int = 0  # mobile members who were away last year (M-2.3e)
    appraised: int = 0  # … of whom an appraisal for last year is recorded

    @property
    def reported_rate(self) -> float | None:
        """Share of outflow members who reported in; None when there is no outflow."""
        return self.reported / self.outflow if self.outflow else None

    @property
    def appraisal_rate(self) -> float | None:
        return self.appraised / self.appraisal_due if self.appraisal_due else None


def is_upper(store: Any) -> bool:
    """Whether the store's own organization has organizations below it (a county, a
    committee): the county view shows a row per organization then, else one row."""
    own = store.meta.get("own_org_id")
    org = store.get(own) if own else None
    if org is None:
        return False
    return org.get("kind") in UPPER_KINDS or len(store.state.subtree(own)) > 1


def org_tree(store: Any) -> list[tuple[str, int]]:
    """The organizations of the own subtree, depth first (children by kind order, then name in
    pinyin order), with their depth below the own organization."""
    own = store.meta.get("own_org_id")
    if not own or store.get(own) is None:
        return []
    children: dict[str, list[dict[str, Any]]] = {}
    for org in store.live("org"):
        children.setdefault(org.get("parent_id") or "", []).append(org)
    kinds = ("province", "city", "county", "committee", "branch", "mobile_branch")
    out: list[tuple[str, int]] = []
    stack = [(own, 0)]
    seen: set[str] = set()
    while stack:
        org_id, depth = stack.pop()
        if org_id in seen:
            continue
        seen.add(org_id)
        out.append((org_id, depth))
        below = sorted(children.get(org_id, ()), key=lambda o: (
            kinds.index(o.get("kind")) if o.get("kind") in kinds else len(kinds),
            _reading(str(o.get("name") or "")), o["id"]))
        stack.extend((o["id"], depth + 1) for o in reversed(below))
    return out


def open_flows(store: Any) -> dict[str, Mapping[str, Any]]:
    """member id → its open flow (the latest left, should there be more than one)."""
    out: dict[str, Mapping[str, Any]] = {}
    for f in store.live("flow"):
        m = f.get("member_id")
        if f.get("status") == "ended" or not m:
            continue
        prev = out.get(m)
        if prev is None or str(f.get("left_on") or "") > str(prev.get("left_on") or ""):
            out[m] = f
    return out


def _reading(name: str) -> str:
    readings = name_readings(name)
    return " ".join(readings[0]) if readings else name


def org_stats(store: Any, today: dt.date, settings: Thresholds | None = None) -> list[OrgStats]:
    """One row per organization of the store's subtree, in tree order (the own organization
    first, its row the total)."""
    cfg = settings or Thresholds()
    tree = org_tree(store)
    if not tree:
        return []
    # every organization of the subtree → itself and its ancestors up to the own organization
    parent = {o["id"]: o.get("parent_id") for o in store.live("org")}
    inside = {org_id for org_id, _ in tree}
    chains: dict[str, list[str]] = {}
    for org_id, _ in tree:
        chain, current = [], org_id
        while current in inside and current not in chain:
            chain.append(current)
            current = parent.get(current)
        chains[org_id] = chain
    counts: dict[str, Counter[str]] = {org_id: Counter() for org_id in inside}

    def credit(org_id: str | None, key: str) -> None:
        for ancestor in chains.get(org_id or "", ()):
            counts[ancestor][key] += 1

    # contact due, lost contact, appraisal missing: the worklist's own items (store/rules.py),
    # so that these counts and the worklist never disagree
    due: dict[str, set[str]] = {"contact_due": set(), "lost_contact": set(),
                                "appraisal_missing": set()}
    for item in worklist(store, today, cfg):
        if item.kind in due and item.member_id:
            due[item.kind].add(item.member_id)
    last_year_end = f"{today.year - 1}-12-31"
    flows = open_flows(store)
    for m in store.live("member"):
        if m.get("archived"):
            continue
        home = m.get("home_org_id")
        credit(home, "members")
        if m["id"] not in flows and m["id"] in due["lost_contact"]:
            credit(home, "lost")
    for member_id, flow in flows.items():
        member = store.get(member_id)
        if member is None or member.get("archived"):
            continue
        home, host = flow.get("home_org_id"), flow.get("host_org_id")
        if home in inside:
            credit(home, "outflow")
            if flow.get("status") == "reported":
                credit(home, "reported")
            else:
                credit(home, "pending")
                left = dt.date.fromisoformat(flow["left_on"])
                if (today - left).days > cfg.report_days:
                    credit(home, "report_overdue")
        if host in inside:
            credit(host, "inflow")
        responsible = home if home in inside else host if host in inside else None
        if responsible is None:
            continue
        if member_id in due["lost_contact"]:
            credit(responsible, "lost")
        elif member_id in due["contact_due"]:
            credit(responsible, "contact_due")
        if str(flow.get("left_on") or "9999") <= last_year_end:
            credit(responsible, "appraisal_due")
            if member_id not in due["appraisal_missing"]:
                credit(responsible, "appraised")
    out = []
    for org_id, depth in tree:
        org = store.get(org_id) or {}
        c = counts[org_id]
        out.append(OrgStats(org_id, str(org.get("name") or org_id[-6:]), str(org.get("kind")),
                            depth, **{k: c[k] for k in (
                                "members", "outflow", "inflow", "reported", "pending",
                                "report_overdue", "contact_due", "lost", "appraisal_due",
                                "appraised")}))
    return out


# -- county tasks and their replies ----------------------------------------------------------

@dataclass(frozen=True)
class TargetReply:
    """One target organization of a task and its latest reply (``status`` "none": no reply)."""

    org_id: str
    status: str  # open | done | none
    note: str = ""
    done_on: str = ""
    reply_id: str | None = None


@dataclass(frozen=True)
class TaskView:
    task_id: str
    title: str
    due_on: str
    issued_by_org_id: str
    sent: bool  # issued by this store's subtree (else: received by it)
    targets: tuple[TargetReply, ...] = field(default_factory=tuple)

    @property
    def done(self) -> int:
        return sum(1 for r in self.targets if r.status == "done")

    @property
    def complete(self) -> bool:
        return bool(self.targets) and self.done == len(self.targets)

    def overdue(self, today: dt.date) -> bool:
        return bool(self.due_on) and not self.complete and self.due_on < today.isoformat()


def latest_replies(replies: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(task id, org id) → the reply last changed (a branch answers a task once, but two devices
    of one branch might each have made one)."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in replies:
        key = (str(r.get("task_id")), str(r.get("org_id")))
        prev = out.get(key)
        if prev is None or (str(r.get("updated_at") or ""), r["id"]) > (
                str(prev.get("updated_at") or ""), prev["id"]):
            out[key] = r
    return out


def task_views(store: Any) -> list[TaskView]:
    """The tasks this store's organization sent (every target's reply) or received (its own
    targets' replies): those not complete first, by due date, then the complete ones."""
    subtree = store.state.own_subtree()
    replies = latest_replies(store.live("task_reply"))
    out = []
    for task in store.live("task"):
        sent = task.get("issued_by_org_id") in subtree
        targets = [o for o in task.get("target_org_ids") or () if sent or o in subtree]
        if not targets:
            continue
        rows = []
        for org_id in targets:
            r = replies.get((task["id"], org_id))
            rows.append(TargetReply(org_id, str(r.get("status") or "open") if r else "none",
                                    str(r.get("note") or "") if r else "",
                                    str(r.get("done_on") or "") if r else "",
                                    r["id"] if r else None))
        out.append(TaskView(task["id"], str(task.get("title") or ""),
                            str(task.get("due_on") or ""), str(task.get("issued_by_org_id")),
                            sent, tuple(rows)))
    out.sort(key=lambda v: (v.complete, v.due_on or "9999", v.title, v.task_id))
    return out
