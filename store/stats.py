"""Statistics per organization, the dues ledger and the state of county tasks, computed on the
spot from the records (M-5.1 statistics shared, M-5.3 funding, M-5.4 tasks sent down and
answers sent up). Pure: no Textual, no I/O, no SQL. The same code runs on a device (its
``Store``) and on the county server (``liudong admin stats``, over a ``store.view.RecordView``
of its records), so the county screen and the admin's table cannot disagree.

The time limits are the worklist's (``store.rules.Thresholds``), and contact due, lost contact
and missing appraisals are counted from the worklist's own items (``store.rules.worklist``), so
a member counted here as "contact due" is one the worklist lists. Each organization's row counts
its whole subtree: the own organization's row is the total.

Which organization a figure counts for:
- outflow, reported / pending report (M-1.2): the flow's home organization;
- inflow (M-2.3a): the flow's host organization;
- contact due, lost contact (M-2.2b), appraisal coverage (M-2.3e): the organization responsible
  for the member, the home organization when it lies in the view's subtree, else the host (an
  inflow member whose home is elsewhere). A member without an open flow counts as lost when the
  home has marked it so (``lost_contact_since``);
- attendance (M-3.2): the organization that held the meeting; over the meetings held in the last
  12 months, the people it recorded as attending against those it recorded as attending or
  absent (``attendee_ids``, ``absences``) — inflow members included, as they are on the record;
- the dues ledger (M-5.3): the organization a ``fund`` record is kept for, allocations less
  expenses, per purpose;
- county tasks overdue (M-5.4): each target organization that has not answered ``done`` by the
  task's due date.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .rules import Thresholds, add_months, worklist
from .schema import CHOICES
from .search import name_readings
from .view import Register

# Organization kinds that have organizations below them: their view shows one row per org.
UPPER_KINDS = frozenset({"province", "city", "county", "committee"})
ORG_KINDS = ("province", "city", "county", "committee", "branch", "mobile_branch")
PURPOSES = tuple(value for value, _, _ in CHOICES["fund_purpose"])
ATTENDANCE_MONTHS = 12  # attendance is counted over the meetings of the last year (M-3.2)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class OrgStats:
    """One organization's numbers (its whole subtree)."""

    org_id: str
    name: str
    kind: str
    depth: int  # 0 for the view's own organization
    members: int = 0  # live members whose home is here, archived ones left out
    outflow: int = 0  # open flows leaving from here (M-1.2)
    inflow: int = 0  # open flows hosted here (M-2.3a)
    reported: int = 0  # outflow flows whose member reported in to the host (M-1.2)
    pending: int = 0  # outflow flows still pending report
    report_overdue: int = 0  # … of which more than ``report_days`` after leaving (M-1.2)
    contact_due: int = 0  # not reached for 90 days (180 studying abroad), not yet lost (M-2.2b)
    lost: int = 0  # lost contact: 6 months without a reached contact, or marked lost (M-2.2b)
    appraisal_due: int = 0  # mobile members who were away last year (M-2.3e)
    appraised: int = 0  # … of whom an appraisal for last year is recorded
    meetings: int = 0  # meetings held in the last 12 months (M-3.2)
    attended: int = 0  # … people recorded as attending them
    expected: int = 0  # … people recorded as attending or absent
    tasks_open: int = 0  # county tasks sent here without a "done" answer (M-5.4)
    tasks_overdue: int = 0  # … of which past their due date
    fund: Mapping[str, Decimal] = field(default_factory=dict)  # purpose → balance (M-5.3)

    @property
    def reported_rate(self) -> float | None:
        """Share of outflow members who reported in; None when there is no outflow."""
        return self.reported / self.outflow if self.outflow else None

    @property
    def appraisal_rate(self) -> float | None:
        return self.appraised / self.appraisal_due if self.appraisal_due else None

    @property
    def attendance_rate(self) -> float | None:
        """Attended over expected in the meetings of the last 12 months; None without any."""
        return self.attended / self.expected if self.expected else None

    @property
    def fund_balance(self) -> Decimal:
        """The dues ledger's balance over every purpose (M-5.3)."""
        return sum(self.fund.values(), ZERO)


# The figures both sides show, in the order of the tables (key, Chinese heading, English one,
# the requirement it answers). ``liudong admin stats`` adds the server's own columns.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("members", "党员", "members", "M-5.1"),
    ("outflow", "流出", "out", "M-1.2"),
    ("inflow", "流入", "in", "M-2.3a"),
    ("pending", "待报到", "pending", "M-1.2"),
    ("reported_rate", "报到率", "reported", "M-1.2"),
    ("contact_due", "应联系", "contact", "M-2.2b"),
    ("lost", "失联", "lost", "M-2.2b"),
    ("appraisal_rate", "评议率", "appraised", "M-2.3e"),
    ("attendance_rate", "参会率", "attended", "M-3.2"),
    ("fund_balance", "经费", "funds", "M-5.3"),
    ("tasks_overdue", "逾期任务", "tasks late", "M-5.4"),
)


def as_row(s: OrgStats) -> dict[str, Any]:
    """One organization's figures as plain JSON values (money as text in yuan, rates as
    fractions or null): the shared columns of the county screen's export and of
    ``liudong admin stats --json``."""
    out: dict[str, Any] = {"org_id": s.org_id, "name": s.name, "kind": s.kind, "depth": s.depth}
    for name in ("members", "outflow", "inflow", "reported", "pending", "report_overdue",
                 "contact_due", "lost", "appraisal_due", "appraised", "meetings", "attended",
                 "expected", "tasks_open", "tasks_overdue"):
        out[name] = getattr(s, name)
    for name in ("reported_rate", "appraisal_rate", "attendance_rate"):
        rate = getattr(s, name)
        out[name] = None if rate is None else round(rate, 4)
    out["fund_balance"] = f"{s.fund_balance:.2f}"
    for purpose in PURPOSES:
        out[f"fund_{purpose}"] = f"{s.fund.get(purpose, ZERO):.2f}"
    return out


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


def yuan(amount: Decimal) -> str:
    """An amount as a table shows it: whole yuan without decimals."""
    return f"{amount:.0f}" if amount == amount.to_integral_value() else f"{amount:.2f}"


def is_upper(view: Register) -> bool:
    """Whether the view's own organization has organizations below it (a county, a
    committee): the county view shows a row per organization then, else one row."""
    own = view.meta.get("own_org_id")
    org = view.get(own) if own else None
    if org is None:
        return False
    return org.get("kind") in UPPER_KINDS or len(view.state.subtree(own)) > 1


def org_tree(view: Register) -> list[tuple[str, int]]:
    """The organizations of the own subtree, depth first (children by kind order, then name in
    pinyin order), with their depth below the own organization."""
    own = view.meta.get("own_org_id")
    if not own or view.get(own) is None:
        return []
    children: dict[str, list[Mapping[str, Any]]] = {}
    for org in view.live("org"):
        children.setdefault(org.get("parent_id") or "", []).append(org)
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
            ORG_KINDS.index(o["kind"]) if o.get("kind") in ORG_KINDS else len(ORG_KINDS),
            _reading(str(o.get("name") or "")), o["id"]))
        stack.extend((o["id"], depth + 1) for o in reversed(below))
    return out


def open_flows(view: Register) -> dict[str, Mapping[str, Any]]:
    """member id → its open flow (the latest left, should there be more than one)."""
    out: dict[str, Mapping[str, Any]] = {}
    for f in view.live("flow"):
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


class _Tally:
    """Counts credited to an organization and to each of its ancestors up to the view's own
    organization: every row counts its subtree."""

    def __init__(self, view: Register, tree: list[tuple[str, int]]) -> None:
        parent = {o["id"]: o.get("parent_id") for o in view.live("org")}
        self.inside = {org_id for org_id, _ in tree}
        self.chains: dict[str, list[str]] = {}
        for org_id, _ in tree:
            chain, current = [], org_id
            while current in self.inside and current not in chain:
                chain.append(current)
                current = parent.get(current)
            self.chains[org_id] = chain
        self.counts: dict[str, Counter[str]] = {org_id: Counter() for org_id in self.inside}
        self.money: dict[str, dict[str, Decimal]] = {org_id: {} for org_id in self.inside}

    def credit(self, org_id: str | None, key: str, n: int = 1) -> None:
        for ancestor in self.chains.get(org_id or "", ()):
            self.counts[ancestor][key] += n

    def credit_money(self, org_id: str | None, purpose: str, amount: Decimal) -> None:
        for ancestor in self.chains.get(org_id or "", ()):
            ledger = self.money[ancestor]
            ledger[purpose] = ledger.get(purpose, ZERO) + amount


def org_stats(view: Register, today: dt.date,
              settings: Thresholds | None = None) -> list[OrgStats]:
    """One row per organization of the view's subtree, in tree order (the own organization
    first, its row the total)."""
    cfg = settings or Thresholds()
    tree = org_tree(view)
    if not tree:
        return []
    tally = _Tally(view, tree)
    _count_members(view, today, cfg, tally)
    _count_attendance(view, today, tally)
    ledgers = _ledgers(view, tree)
    _count_tasks(view, today, tally)
    out = []
    for org_id, depth in tree:
        org = view.get(org_id) or {}
        c = tally.counts[org_id]
        out.append(OrgStats(
            org_id, str(org.get("name") or org_id[-6:]), str(org.get("kind")), depth,
            **{k: c[k] for k in (
                "members", "outflow", "inflow", "reported", "pending", "report_overdue",
                "contact_due", "lost", "appraisal_due", "appraised", "meetings", "attended",
                "expected", "tasks_open", "tasks_overdue")},
            fund={p: ledgers[org_id].balance(p) for p in PURPOSES}))
    return out


def _count_members(view: Register, today: dt.date, cfg: Thresholds, tally: _Tally) -> None:
    """Members, outflow and inflow, reporting in (M-1.2), contact (M-2.2b), appraisal
    coverage (M-2.3e)."""
    credit, inside = tally.credit, tally.inside
    # contact due, lost contact, appraisal missing: the worklist's own items (store/rules.py),
    # so that these counts and the worklist never disagree
    due: dict[str, set[str]] = {"contact_due": set(), "lost_contact": set(),
                                "appraisal_missing": set()}
    for item in worklist(view, today, cfg):  # type: ignore[arg-type]  (reads a Register)
        if item.kind in due and item.member_id:
            due[item.kind].add(item.member_id)
    last_year_end = f"{today.year - 1}-12-31"
    flows = open_flows(view)
    for m in view.live("member"):
        if m.get("archived"):
            continue
        home = m.get("home_org_id")
        credit(home, "members")
        if m["id"] not in flows and m["id"] in due["lost_contact"]:
            credit(home, "lost")
    for member_id, flow in flows.items():
        member = view.get(member_id)
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


def _count_attendance(view: Register, today: dt.date, tally: _Tally) -> None:
    """Meetings held in the last 12 months, and who attended them against who was expected
    (attending or recorded absent), by the organization that held them (M-3.2)."""
    since = add_months(today, -ATTENDANCE_MONTHS).isoformat()
    until = today.isoformat()
    for meeting in view.live("meeting"):
        held = str(meeting.get("held_on") or "")
        if not since < held <= until:
            continue
        attended = set(meeting.get("attendee_ids") or ())
        absent = {a.get("member_id") for a in meeting.get("absences") or ()
                  if isinstance(a, Mapping) and a.get("member_id")}
        org = meeting.get("org_id")
        tally.credit(org, "meetings")
        tally.credit(org, "attended", len(attended))
        tally.credit(org, "expected", len(attended | absent))


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else ZERO
    except InvalidOperation:  # validated on entry; an unreadable one counts for nothing
        return ZERO


def _count_tasks(view: Register, today: dt.date, tally: _Tally) -> None:
    """County tasks sent to an organization of the subtree without a "done" answer from it,
    and those of them past due (M-5.4)."""
    replies = latest_replies(view.live("task_reply"))
    iso = today.isoformat()
    for task in view.live("task"):
        due_on = str(task.get("due_on") or "")
        for org_id in task.get("target_org_ids") or ():
            if org_id not in tally.inside:
                continue
            reply = replies.get((task["id"], org_id))
            if reply is not None and reply.get("status") == "done":
                continue
            tally.credit(org_id, "tasks_open")
            if due_on and due_on < iso:
                tally.credit(org_id, "tasks_overdue")


# -- the dues ledger -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FundLedger:
    """One organization's dues ledger (M-5.3), its whole subtree: what was allocated and what
    was spent, per purpose (``education``, ``activities``, ``condolence``)."""

    org_id: str
    allocated: Mapping[str, Decimal] = field(default_factory=dict)
    spent: Mapping[str, Decimal] = field(default_factory=dict)

    def balance(self, purpose: str | None = None) -> Decimal:
        """The balance of one purpose, or of all of them."""
        purposes = PURPOSES if purpose is None else (purpose,)
        return sum((self.allocated.get(p, ZERO) - self.spent.get(p, ZERO) for p in purposes),
                   ZERO)


def fund_balances(view: Register) -> dict[str, FundLedger]:
    """org id → its ledger, for every organization of the view's subtree (subtree totals, as
    every figure here), in tree order."""
    return _ledgers(view, org_tree(view))


def _ledgers(view: Register, tree: list[tuple[str, int]]) -> dict[str, FundLedger]:
    allocated, spent = _Tally(view, tree), _Tally(view, tree)
    for fund in view.live("fund"):
        purpose, kind = str(fund.get("purpose") or ""), fund.get("kind")
        if purpose in PURPOSES and kind in ("allocation", "expense"):
            (allocated if kind == "allocation" else spent).credit_money(
                fund.get("org_id"), purpose, _amount(fund.get("amount_yuan")))
    return {org_id: FundLedger(org_id, allocated.money[org_id], spent.money[org_id])
            for org_id, _ in tree}


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else ZERO
    except InvalidOperation:  # validated on entry; an unreadable one counts for nothing
        return ZERO


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
    sent: bool  # issued by this view's subtree (else: received by it)
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


def task_views(view: Register) -> list[TaskView]:
    """The tasks this view's organization sent (every target's reply) or received (its own
    targets' replies): those not complete first, by due date, then the complete ones."""
    subtree = view.state.own_subtree()
    replies = latest_replies(view.live("task_reply"))
    out = []
    for task in view.live("task"):
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
