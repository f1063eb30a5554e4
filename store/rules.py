"""The worklist: what is due, derived on the spot from the records, never stored (DESIGN §2.3).

Each item cites the requirement it comes from (domain/MANDATE.md) and names the record to open.
Which items an organization sees follows from where it stands (DESIGN §2.2, ``scope.mobility``):
the home side's items for its outflow members, the host side's for its inflow members; a county
above both sees the home side's.

The rules, as the records allow them to be read (each is due on the day its cutoff is reached):

- report_overdue (M-1.2): a flow still ``pending_report`` more than 30 days after ``left_on``;
- lost_contact / contact_due (M-2.2b home, M-2.3b host): no reached contact since the later of
  ``left_on`` and the last reached contact for 6 months (lost) or 90 days (due; 180 for the
  reason ``study_abroad``); a member's ``lost_contact_since`` not followed by a reached contact
  is lost too, with or without a flow;
- no_contact_person (M-2.2b / M-2.3b): an open flow without ``home_contact`` (home side) or
  ``host_contact`` (host side);
- probable_mobile (M-1.1): a member at home with no open flow who attended no meeting the store
  holds (any organization's: attendance elsewhere counts, M-3.2) for 6 months, while the home
  branch held meetings in that time and its records reach back to its start; only for members
  who joined (``joined_on``, else when the record was made) before it;
- probation_due (M-2.2c): a probationary member whose ``probation_ends_on`` is within 30 days or
  past, with no decided ``probation_review`` for it (an ``extended`` decision counts only for a
  review due on or after that date); the host is asked for its conduct report;
- appraisal_missing (M-2.3e): no ``appraisal`` for last year for a member on a flow that began
  by the end of last year;
- transfer_receipt_overdue (M-1.4): an ``issued`` transfer without ``received_on`` past
  ``receipt_due_on`` (else one month after ``issued_on``);
- transfer_suggested (M-1.4, home side): a flow open for 12 months with a known host (in the
  system or not) and no transfer drafted, issued or received;
- task_open (M-5.4): a task sent to this organization or one below it without a ``done`` reply
  from that organization;
- conflict, rejected: open sync conflicts, and writes the county refused (``meta["rejected"]``).

What the rules read per member comes from the state's indexes (store/indexes.py: the open
flow, the last reached contact, the appraised years, the transfers under way, the lost and the
probationary members, the issued letters), kept up to date by every commit, so a worklist makes
no pass over the contacts, appraisals and transfers; only the meetings (a few hundred) are read
whole. Everything comes from the ``State`` (its tables, indexes and metadata), nothing from the
store's files. Thresholds become ISO dates compared with the records' dates; date arithmetic is
memoized; texts are made when read. A worklist is kept per revision of the state, so a second
look without a commit in between (the county statistics, the worklist screen) costs a copy.
``bench/bench_rules.py`` measures it. No I/O.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple

from .indexes import EMPTY
from .rules_index import BY_SINCE, MeetingIndex, kept_for
from .schema import TYPES

if TYPE_CHECKING:
    from .state import State
    from .store import Store


@dataclass(frozen=True)
class Thresholds:
    """The policy's time limits (defaults as DESIGN §2.3 reads the policy)."""

    report_days: int = 30  # report to the host within 30 days of leaving (M-1.2)
    contact_days: int = 90  # a reached contact at least every 90 days (M-2.2b)
    contact_days_abroad: int = 180  # … every 180 days for a member studying abroad
    lost_contact_months: int = 6  # six months without a reached contact: lost (M-2.2b)
    probation_window_days: int = 30  # conversion shown 30 days before probation ends (M-2.2c)
    transfer_receipt_months: int = 1  # a transfer letter's receipt is due in a month (M-1.4)
    transfer_after_months: int = 12  # a flow this old with a known host: transfer (M-1.4)
    no_attendance_months: int = 6  # six months attending no meeting (M-1.1)
    activity_window_days: int = 365  # checklists: study, role, care within the last year


# kind → (group title in Chinese, in English, the requirement it comes from); the order is the
# order of the groups in the worklist.
KINDS: dict[str, tuple[str, str, str]] = {
    "report_overdue": ("逾期未报到", "Report overdue", "M-1.2"),
    "lost_contact": ("失联党员", "Lost contact", "M-2.2b"),
    "contact_due": ("应联系", "Contact due", "M-2.2b"),
    "no_contact_person": ("未指定联系人", "No designated contact person", "M-2.2b"),
    "probable_mobile": ("疑似流动党员未登记", "Probably mobile, not registered", "M-1.1"),
    "probation_due": ("预备党员待转正", "Probation conversion due", "M-2.2c"),
    "appraisal_missing": ("缺少上年度民主评议", "Appraisal missing for last year", "M-2.3e"),
    "transfer_receipt_overdue": ("转接回执逾期", "Transfer receipt overdue", "M-1.4"),
    "transfer_suggested": ("建议转接组织关系", "Transfer suggested", "M-1.4"),
    "task_open": ("县级工作调度", "County tasks", "M-5.4"),
    "conflict": ("同步冲突待处理", "Sync conflicts to resolve", ""),
    "rejected": ("县里未接受的修改", "Changes the county refused", ""),
}


# The texts of the items, filled in when read (``Item.zh``/``Item.en``): a large register has
# thousands of items, most of them never shown.
TEXTS: dict[str, tuple[str, str]] = {
    "report_overdue": ("{0} 外出 {1} 天仍未报到（{2} 外出）",
                       "{0} has not reported in {1} days after leaving ({2})"),
    "lost_contact": ("{0} 失联（自 {1}；上次联系上：{2}）",
                     "{0} out of contact since {1} (last reached: {3})"),
    "lost_contact_member": ("{0} 失联（自 {1}）", "{0} out of contact since {1}"),
    "contact_due": ("{0} 已 {1} 天未联系上（上次联系上：{2}）",
                    "{0} not reached for {1} days (last reached: {3})"),
    "no_home_contact": ("{0} 的流动登记未指定流出地联系人",
                        "no home contact person is designated for {0}"),
    "no_host_contact": ("{0} 的流动登记未指定流入地联系人",
                        "no host contact person is designated for {0}"),
    "appraisal_missing": ("{0} 缺少 {1} 年度民主评议", "{0} has no democratic appraisal for {1}"),
    "transfer_suggested": ("{0} 外出已 {1} 个月，流入地明确（{2}），建议转接组织关系",
                           "{0} has been away {1} months with a known host ({2}): consider "
                           "transferring the membership"),
    "probable_mobile": ("{0} 近 {1} 个月未参加组织生活（本支部期间召开 {2} 次；最近一次参加本支部"
                        "组织生活：{3}），尚无流动登记",
                        "{0} attended no meeting in the last {1} months (the home branch held "
                        "{2}; last attended there: {4}) and has no flow registered"),
    "plain": ("{0}", "{1}"),
}


class Item(NamedTuple):
    """One thing due (immutable). ``rec_id`` is the record to open; ``since`` the ISO date it
    became due; ``side`` the side of the flow it falls to (``home``, ``host``, or "" for the
    organization itself); ``zh``/``en`` say why, naming the person (made from ``template`` and
    ``args`` when read).

    A named tuple rather than a dataclass: a large register has thousands of items, and a tuple
    is made four times faster."""

    kind: str
    mandate: str
    rec_id: str
    member_id: str | None
    since: str
    side: str
    template: str
    args: tuple[Any, ...]

    @property
    def zh(self) -> str:
        return TEXTS[self.template][0].format(*self.args)

    @property
    def en(self) -> str:
        return TEXTS[self.template][1].format(*self.args)

    @property
    def title_zh(self) -> str:
        return KINDS[self.kind][0]

    @property
    def title_en(self) -> str:
        return KINDS[self.kind][1]

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "mandate": self.mandate, "rec_id": self.rec_id,
                "member_id": self.member_id, "since": self.since, "side": self.side,
                "zh": self.zh, "en": self.en, "title_zh": self.title_zh,
                "title_en": self.title_en}


def counts(items: Iterable[Item]) -> dict[str, int]:
    """How many items of each kind, in the order of KINDS (kinds with none are left out)."""
    found: dict[str, int] = {}
    for item in items:
        found[item.kind] = found.get(item.kind, 0) + 1
    return {k: found[k] for k in KINDS if k in found}


# -- dates -------------------------------------------------------------------------------------

def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (or earlier), on the month's last day where it has none."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    month += 1
    if day.day <= 28:
        return dt.date(year, month, day.day)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def hlc_date(hlc: str) -> dt.date:
    """The local calendar day of a hybrid logical clock value (its first 12 hex digits are
    wall-clock milliseconds)."""
    return dt.datetime.fromtimestamp(int(hlc[:12], 16) / 1000).date()


# Date arithmetic on ISO strings, memoized across calls (a date's arithmetic never changes):
# thousands of items share a few thousand dates, and parsing one costs more than an item.
@lru_cache(maxsize=1 << 16)
def _ordinal(iso: str) -> int:
    return dt.date.fromisoformat(iso).toordinal()


@lru_cache(maxsize=1 << 16)
def plus_days(iso: str, days: int) -> str:
    """The ISO date ``days`` after ``iso``."""
    return dt.date.fromordinal(_ordinal(iso) + days).isoformat()


@lru_cache(maxsize=1 << 16)
def plus_months(iso: str, months: int) -> str:
    """The ISO date ``months`` after ``iso`` (``add_months``)."""
    return add_months(dt.date.fromisoformat(iso), months).isoformat()


# An item made from a tuple of its fields at C speed (``Item(...)`` runs Python code).
_make_item = partial(tuple.__new__, Item)


# -- the worklist ------------------------------------------------------------------------------

def worklist(store: Store, today: dt.date | None = None,
             settings: Thresholds | None = None) -> list[Item]:
    """Everything due for the store's organization on ``today``, grouped by kind (the order of
    KINDS), the oldest first within a group."""
    return list(state_worklist(store.state, today or dt.date.today(), settings or Thresholds()))


def state_worklist(state: State, today: dt.date, cfg: Thresholds) -> tuple[Item, ...]:
    """The worklist over a ``State`` (on a device or the county server), kept between calls
    and brought up to date member by member (store/rules_index.py)."""
    return kept_for(state).worklist(state, today, cfg, _Rules)


def fresh_worklist(state: State, today: dt.date, cfg: Thresholds) -> tuple[Item, ...]:
    """The worklist worked out from nothing (what the kept one must always equal)."""
    rules = _Rules(state, dict(state.meta), today, cfg)
    rules.member_part(None)
    rules.shared_part()
    out: list[Item] = []
    for kind in KINDS:
        out += sorted(rules.found[kind], key=BY_SINCE)
    return tuple(out)


class _Rules:
    """One evaluation. Every threshold becomes an ISO date to compare records' dates with (a
    record is due when its date is on or before the cutoff), so a record that is not due costs
    a string comparison."""

    def __init__(self, state: State, meta: dict[str, Any], today: dt.date,
                 cfg: Thresholds) -> None:
        self.state = state
        self.meta = meta
        self.today = today
        self.iso = today.isoformat()
        self.cfg = cfg
        self.own = meta.get("own_org_id")
        self.subtree = state.subtree(self.own) if self.own else set()
        self.found: dict[str, list[Item]] = {kind: [] for kind in KINDS}
        self.meetings: MeetingIndex | None = None  # the meetings read, when kept from before

        def before(days: int) -> str:
            return (today - dt.timedelta(days=days)).isoformat()

        self.report_cut = before(cfg.report_days)  # left before it: overdue
        self.contact_cut = before(cfg.contact_days)  # last reached on or before it: due
        self.abroad_cut = before(cfg.contact_days_abroad)
        self.lost_cut = add_months(today, -cfg.lost_contact_months).isoformat()
        self.transfer_cut = add_months(today, -cfg.transfer_after_months).isoformat()
        self.window = add_months(today, -cfg.no_attendance_months).isoformat()
        self.probation_from = (today + dt.timedelta(days=cfg.probation_window_days)).isoformat()
        self.last_year = today.year - 1
        self.year_end, self.year_start = f"{today.year - 1}-12-31", f"{today.year}-01-01"
        self._today_ord = today.toordinal()
        self._org_names: dict[str, str] = {}

    def name(self, member_id: str | None) -> str:
        doc = self.state.get(member_id) if member_id else None
        return str(doc.get("name") or "") if doc else "?"

    def org_name(self, org_id: str | None) -> str:
        found = self._org_names.get(org_id or "")
        if found is None:
            doc = self.state.get(org_id) if org_id else None
            found = str(doc.get("name") or org_id) if doc else str(org_id or "")
            self._org_names[org_id or ""] = found
        return found

    def add(self, kind: str, rec_id: str, member_id: str | None, since: str, template: str,
            args: tuple[Any, ...], side: str = "", mandate: str | None = None) -> None:
        self.found[kind].append(_make_item((kind, KINDS[kind][2] if mandate is None else mandate,
                                            rec_id, member_id, since, side, template, args)))

    def plain(self, kind: str, rec_id: str, member_id: str | None, since: str, zh: str, en: str,
              side: str = "") -> None:
        self.add(kind, rec_id, member_id, since, "plain", (zh, en), side)

    def days_since(self, iso: str) -> int:
        return self._today_ord - _ordinal(iso)

    plus_days = staticmethod(plus_days)
    plus_months = staticmethod(plus_months)

    def member_part(self, member_ids: set[str] | None) -> None:
        """The items about members one by one (MEMBER_KINDS), of every member or of these:
        each depends on the member's own records, the day, the settings and the organizations
        only, so a kept worklist works out again those of the members whose records changed.
        The indexes are read through copies taken in one C call: safe while another thread
        commits (the member table itself is read, deleted members passed over where met)."""
        ix, members = self.state.ix, self.state.data["member"]
        if member_ids is None:
            flows, lost, ends = dict(ix.open_flow), dict(ix.lost_since), dict(ix.probation_ends)
        else:
            flows, lost, ends = ({m: v for m in member_ids if (v := index.get(m)) is not None}
                                 for index in (ix.open_flow, ix.lost_since, ix.probation_ends))
        handled = self.flow_items(members, flows)
        self.member_items(members, lost, ends, handled)

    def shared_part(self) -> None:
        """The items that depend on more than one member's records: recomputed every time."""
        self.probable_items(self.state.data["member"])
        self.transfer_items()
        self.task_items()
        self.sync_items()

    # -- members on an open flow ---------------------------------------------------------------
    def flow_items(self, members: dict[str, dict[str, Any]], flows: dict[str, str]) -> set[str]:
        """The rules about a member on an open flow this organization is a side of; returns
        those members. One loop with everything it reads bound locally: it runs once per open
        flow, thousands of times in a large register."""
        subtree, cfg, ix, last_year = self.subtree, self.cfg, self.state.ix, self.last_year
        flow_table = self.state.data["flow"]
        reached_on, appraised, transferring = ix.last_reached, ix.appraised, ix.transferring
        report_cut, lost_cut, contact_cut, abroad_cut = (
            self.report_cut, self.lost_cut, self.contact_cut, self.abroad_cut)
        year_end, transfer_cut = self.year_end, self.transfer_cut
        year_start, probation_from, org_name = self.year_start, self.probation_from, self.org_name
        report_days, lost_months, transfer_months = (
            cfg.report_days, cfg.lost_contact_months, cfg.transfer_after_months)
        today_ord, ordinal = self._today_ord, _ordinal
        today, plus_days, plus_months = self.today, self.plus_days, self.plus_months
        months_away: dict[str, int] = {}  # left_on → whole months since
        found = self.found
        make = _make_item
        report, lost_contact, contact_due, no_person, appraisal, transfer = (
            found[k].append for k in ("report_overdue", "lost_contact", "contact_due",
                                      "no_contact_person", "appraisal_missing",
                                      "transfer_suggested"))
        handled: set[str] = set()
        for mid, fid in flows.items():
            flow = flow_table.get(fid)
            if flow is None:  # purged since the copy of the index was taken
                continue
            outflow = flow.get("home_org_id") in subtree
            inflow = flow.get("host_org_id") in subtree
            if not (outflow or inflow) or flow.get("deleted") or flow.get("status") == "ended":
                continue
            member = members.get(mid)
            if member is None or member.get("archived") or member.get("deleted"):
                continue
            handled.add(mid)
            side = "home" if outflow else "host"
            name, left = member.get("name") or "?", flow["left_on"]

            # M-1.2 report overdue: pending more than 30 days after leaving
            if left < report_cut and flow.get("status") == "pending_report":
                report(make(("report_overdue", "M-1.2", fid, mid,
                             plus_days(left, report_days), side, "report_overdue",
                             (name, today_ord - ordinal(left), left))))

            # M-2.2b / M-2.3b contact due (90 days, 180 abroad), lost contact (6 months):
            # counted from the latest reached contact, or from leaving when none came since
            reached = reached_on.get(mid)
            ref = left if reached is None or reached < left else reached
            lost = member.get("lost_contact_since")
            mandate = "M-2.2b" if outflow else "M-2.3b"
            if (lost and (reached or "") < lost) or ref <= lost_cut:
                since = lost if lost and (reached or "") < lost else plus_months(
                    ref, lost_months)
                lost_contact(make(("lost_contact", mandate, fid, mid, since, side, "lost_contact",
                                   (name, since, reached or "无记录", reached or "never"))))
            else:
                abroad = flow.get("reason") == "study_abroad"
                if ref <= (abroad_cut if abroad else contact_cut):
                    since = plus_days(ref, cfg.contact_days_abroad if abroad
                                      else cfg.contact_days)
                    contact_due(make(("contact_due", mandate, fid, mid, since, side,
                                      "contact_due", (name, today_ord - ordinal(ref),
                                                      reached or "无记录",
                                                      reached or "never"))))

            # M-2.2b, M-2.3b a designated contact person on each side
            if outflow and not flow.get("home_contact"):
                no_person(make(("no_contact_person", "M-2.2b", fid, mid, left, "home",
                                "no_home_contact", (name,))))
            if inflow and not flow.get("host_contact"):
                no_person(make(("no_contact_person", "M-2.3b", fid, mid,
                                flow.get("reported_on") or left, "host", "no_host_contact",
                                (name,))))

            # M-2.3e appraisal for last year, for a member who was mobile then
            if left <= year_end and last_year not in appraised.get(mid, EMPTY):
                appraisal(make(("appraisal_missing", "M-2.3e", mid, mid, year_start, side,
                                "appraisal_missing", (name, last_year))))

            # M-1.4 transfer suggested: a flow this old with a known host (the home's call)
            if outflow and left <= transfer_cut and mid not in transferring and (
                    flow.get("host_org_id") or flow.get("external_host")):
                months = months_away.get(left)
                if months is None:
                    months = months_away[left] = (
                        (today.year - int(left[:4])) * 12 + today.month - int(left[5:7])
                        - (today.day < int(left[8:10])))
                host_id = flow.get("host_org_id")
                host = org_name(host_id) if host_id else flow["external_host"]
                transfer(make(("transfer_suggested", "M-1.4", fid, mid,
                               plus_months(left, transfer_months), "home",
                               "transfer_suggested", (name, months, host))))

            # M-2.2c for a member hosted here (the home side's comes from member_items)
            if not outflow and member.get("standing") == "probationary":
                ends = member.get("probation_ends_on")
                if ends and ends <= probation_from:
                    self.probation_item(member, ends, home=False)
        return handled

    # -- members: lost contact without a flow, probation, probably mobile ----------------------
    def member_items(self, members: dict[str, dict[str, Any]], lost_since: dict[str, str],
                     probation_ends: dict[str, str], handled: set[str]) -> None:
        """The home side's rules over its members lost or on probation (from the indexes):
        most of a register's members have nothing due."""
        subtree = self.subtree
        for mid, lost in lost_since.items():
            m = members.get(mid)
            if m is not None and m.get("lost_contact_since") == lost and not m.get("deleted") \
                    and m.get("home_org_id") in subtree and mid not in handled \
                    and not m.get("archived"):
                self.add("lost_contact", mid, mid, lost, "lost_contact_member",
                         (m.get("name") or "?", lost), "home")
        for mid, ends in probation_ends.items():
            m = members.get(mid)
            if ends <= self.probation_from and m is not None and not m.get("deleted") and \
                    m.get("home_org_id") in subtree and not m.get("archived"):
                self.probation_item(m, ends, home=True)

    def probable_items(self, members: dict[str, dict[str, Any]]) -> None:
        """M-1.1: no attendance at any meeting for six months while the home branch held some,
        and no open flow. The absent are found with set operations at C speed."""
        subtree, window = self.subtree, self.window
        meetings = self.meetings or MeetingIndex(self.state, window)
        covered = meetings.covered
        suspects: dict[str, list[dict[str, Any]]] = {}  # home org → its absent members
        for mid in members.keys() - meetings.present - self.state.ix.open_flow.keys():
            m = members.get(mid)
            if m is None or m.get("deleted"):
                continue
            home = m.get("home_org_id")
            if home not in covered or home not in subtree or m.get("archived"):
                continue
            joined = m.get("joined_on") or hlc_date(m["created_at"]).isoformat()
            if joined <= window:
                suspects.setdefault(home, []).append(m)
        n = self.cfg.no_attendance_months
        for org, absent in suspects.items():
            last = meetings.last_attended(org, {m["id"] for m in absent})
            held, first = meetings.held[org], meetings.first[org]
            for m in absent:
                mid, seen = m["id"], last.get(m["id"])
                start = seen or max(first, m.get("joined_on") or first)
                self.add("probable_mobile", mid, mid, self.plus_months(start, n),
                         "probable_mobile", (m.get("name") or "?", n, held, seen or "无记录",
                                             seen or "none recorded"), "home")

    def probation_item(self, m: dict[str, Any], ends: str, home: bool) -> None:
        """M-2.2c: probation ends within the window (or has ended) and no decision is recorded
        for it; the host is asked for its conduct report."""
        reviews = self.state.records_of(m["id"], "probation_review")
        if any(r.get("decision") and (r["decision"] != "extended" or r.get("due_on", "") >= ends)
               for r in reviews):
            return
        name, left = m.get("name") or "?", -self.days_since(ends)
        when_zh = f"还有 {left} 天" if left >= 0 else f"已逾期 {-left} 天"
        when_en = f"in {left} days" if left >= 0 else f"{-left} days ago"
        zh = f"{name} 预备期 {ends} 期满（{when_zh}），尚无转正决定"
        en = f"{name}'s probation ends on {ends} ({when_en}) and no decision is recorded"
        if not home and not any(r.get("host_conduct_report") for r in reviews):
            zh += "，请提供流入地现实表现"
            en += "; the host's conduct report is wanted"
        since = self.plus_days(ends, -self.cfg.probation_window_days)
        self.plain("probation_due", m["id"], m["id"], since, zh, en, "home" if home else "host")

    # -- transfers, tasks, sync ----------------------------------------------------------------
    def transfer_items(self) -> None:
        """M-1.4: an issued letter whose receipt has not come back within a month."""
        table = self.state.data["transfer"]
        for rec_id in list(self.state.ix.receipts_due):
            t = table.get(rec_id)
            if t is None or t.get("deleted") or t.get("status") != "issued" or \
                    t.get("received_on") or not t.get("issued_on"):
                continue
            home = t.get("from_org_id") in self.subtree
            if not home and t.get("to_org_id") not in self.subtree:
                continue
            due = t.get("receipt_due_on") or self.plus_months(
                t["issued_on"], self.cfg.transfer_receipt_months)
            if self.iso <= due:
                continue
            name, late = self.name(t.get("member_id")), self.days_since(due)
            letter = t.get("letter_no") or "—"
            self.plain("transfer_receipt_overdue", t["id"], t.get("member_id"), due,
                     f"{name} 的组织关系介绍信（{letter}）{t['issued_on']} 开具，回执已逾期 "
                     f"{late} 天",
                     f"the receipt of {name}'s transfer letter ({letter}) issued on "
                     f"{t['issued_on']} is {late} days overdue", "home" if home else "host")

    def task_items(self) -> None:
        """M-5.4: a county task sent to this organization (or one below it) not answered done."""
        done = {(r.get("task_id"), r.get("org_id")) for r in self.state.live("task_reply")
                if r.get("status") == "done"}
        for task in self.state.live("task"):
            for org in task.get("target_org_ids") or ():
                if org not in self.subtree or (task["id"], org) in done:
                    continue
                due = task.get("due_on")
                title = task.get("title") or ""
                who = f"{self.org_name(org)}：" if org != self.own else ""
                if due:
                    left = -self.days_since(due)
                    when_zh = f"截止 {due}（还有 {left} 天）" if left >= 0 else \
                        f"截止 {due}（已逾期 {-left} 天）"
                    when_en = f"due {due} (in {left} days)" if left >= 0 else \
                        f"due {due} ({-left} days overdue)"
                else:
                    when_zh, when_en = "未定期限", "no due date"
                self.plain("task_open", task["id"], None,
                         due or hlc_date(task["created_at"]).isoformat(),
                         f"{who}「{title}」{when_zh}，尚未完成",
                         f"{who}\u201c{title}\u201d {when_en}, not done yet")

    def sync_items(self) -> None:
        for c in self.state.live("conflict"):
            if c.get("status") != "open":
                continue
            subject = self.state.get(c.get("subject_id") or "", include_deleted=True)
            member_id = None
            if subject is not None:
                member_id = subject["id"] if subject["type"] == "member" else \
                    subject.get("member_id")
            rtype = TYPES.get(c.get("subject_type") or "")
            field = rtype.by_name.get(c.get("field") or "") if rtype else None
            what_zh = field.zh if field else str(c.get("field"))
            what_en = field.en if field else str(c.get("field"))
            title = self.name(member_id) if member_id else (rtype.zh if rtype else "?")
            title_en = self.name(member_id) if member_id else (rtype.en if rtype else "?")
            self.plain("conflict", c["id"], member_id, hlc_date(c["created_at"]).isoformat(),
                     f"{title} 的「{what_zh}」在两处被同时修改，请选择保留的值",
                     f"{title_en}: {what_en} was changed in two places at once; choose the "
                     f"value to keep")
        synced = self.meta.get("synced_at")
        since = (dt.datetime.fromtimestamp(synced).date().isoformat()
                 if isinstance(synced, (int, float)) else self.iso)
        for r in self.meta.get("rejected", []):
            if not isinstance(r, dict):
                continue
            rtype = TYPES.get(str(r.get("type")))
            what_zh = r.get("title") or (rtype.zh if rtype else "记录")
            what_en = r.get("title") or (rtype.en if rtype else "record")
            doc = self.state.get(str(r.get("rec_id")), include_deleted=True) \
                if r.get("rec_id") else None
            member_id = None
            if doc is not None:
                member_id = doc["id"] if doc["type"] == "member" else doc.get("member_id")
            self.plain("rejected", str(r.get("rec_id") or ""), member_id, since,
                     f"{what_zh}：县里未接受此修改（{r.get('zh') or '原因不明'}）",
                     f"{what_en}: the county did not accept this change "
                     f"({r.get('en') or 'no reason given'})")
