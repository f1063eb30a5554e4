"""The three responsibility checklists of the policy (MANDATE M-2.2 home, 7 duties; M-2.3 host,
6; M-2.4 the member, 5), per member, each duty ticked from evidence in the records with the
evidence's ids one key away, and when not ticked the reason why (DESIGN §2.3).

The sides shown follow where the viewing organization stands (``scope.mobility``): the home
duties for an outflow member, the host duties for an inflow member (a county above both sees
both), and the member's own five whenever the member is on an open flow.

A duty no record type can evidence is shown not ticked, saying so: nothing is inferred. No I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .register import open_flow
from .rules import Thresholds, add_months, hlc_date

if TYPE_CHECKING:
    from .store import Store

NO_RECORD = ("没有记录类型记载此项", "no record type holds this")

# (side, mandate id, Chinese, English) in the policy's order.
DUTIES: tuple[tuple[str, str, str, str], ...] = (
    ("home", "M-2.2a", "及时掌握党员外出去向", "know promptly who has left and where"),
    ("home", "M-2.2b", "明确联系人，定期联系流出党员",
     "a designated contact person contacts the member regularly"),
    ("home", "M-2.2c", "按期做好预备党员转正", "convert a probationary member on time"),
    ("home", "M-2.2d", "组织流出党员参加网上学习", "organize online study"),
    ("home", "M-2.2e", "引导流出党员发挥作用", "guide the member to play a role"),
    ("home", "M-2.2f", "表彰优秀流出党员", "commend an outstanding outflow member"),
    ("home", "M-2.2g", "监督管理流出党员", "supervise and manage the member"),
    ("host", "M-2.3a", "及时掌握流入党员情况", "know promptly who has arrived"),
    ("host", "M-2.3b", "明确联系人，保持经常联系", "a designated contact person stays in touch"),
    ("host", "M-2.3c", "组织流入党员参加组织生活", "have the member take part in organizational life"),
    ("host", "M-2.3d", "关心关爱、帮扶流入党员", "care for and assist the member"),
    ("host", "M-2.3e", "开展民主评议", "hold democratic appraisal"),
    ("host", "M-2.3f", "加强日常监督", "daily supervision"),
    ("member", "M-2.4a", "外出前向党组织报告", "report to the home organization before leaving"),
    ("member", "M-2.4b", "到达后向流入地党组织报到", "report to the host organization on arrival"),
    ("member", "M-2.4c", "与流出地党组织保持联系", "keep in touch with the home organization"),
    ("member", "M-2.4d", "情况变化及时报告", "report changes of place, employer or phone promptly"),
    ("member", "M-2.4e", "发挥先锋模范作用", "play a vanguard role"),
)
_DUTY = {d[1]: d for d in DUTIES}


@dataclass(frozen=True)
class Check:
    """One duty of a checklist. ``done``: the records evidence it (``evidence_ids``);
    otherwise ``reason_zh``/``reason_en`` say what is missing. ``applies`` is False where the
    duty does not concern this member now (a full member has no conversion due); such a
    duty is not ticked and the reason says why."""

    side: str  # home | host | member
    mandate: str
    zh: str
    en: str
    done: bool
    evidence_ids: tuple[str, ...] = ()
    reason_zh: str = ""
    reason_en: str = ""
    applies: bool = True

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "evidence_ids": list(self.evidence_ids)}


def _check(mandate: str, done: bool, evidence: Iterable[str] = (), reason: tuple[str, str] = ("", ""),
           applies: bool = True) -> Check:
    side, _, zh, en = _DUTY[mandate]
    return Check(side, mandate, zh, en, done, tuple(evidence), *reason, applies=applies)


def checklist(store: Store, member_id: str, today: dt.date | None = None,
              settings: Thresholds | None = None) -> list[Check]:
    """The checklists of one member as this store's organization sees the member."""
    return checklists(store, [member_id], today, settings)[member_id]


def checklists(store: Store, member_ids: Iterable[str], today: dt.date | None = None,
               settings: Thresholds | None = None) -> dict[str, list[Check]]:
    """The checklists of several members, reading the meetings once."""
    ids = list(member_ids)
    ctx = _Context(store, today or dt.date.today(), settings or Thresholds())
    return {mid: ctx.checklist(mid) for mid in ids}


class _Context:
    def __init__(self, store: Store, today: dt.date, cfg: Thresholds) -> None:
        self.store = store
        self.today = today
        self.iso = today.isoformat()
        self.cfg = cfg
        self.subtree = store.state.own_subtree()
        self.year_ago = (today - dt.timedelta(days=cfg.activity_window_days)).isoformat()
        self.window = add_months(today, -cfg.no_attendance_months).isoformat()
        self._meetings: dict[str, list[dict[str, Any]]] | None = None

    def meetings(self, org: str) -> list[dict[str, Any]]:
        """The meetings ``org`` held in the no-attendance window, newest first."""
        if self._meetings is None:
            self._meetings = {}
            for doc in self.store.live("meeting"):
                if self.window <= (doc.get("held_on") or "") <= self.iso and doc.get("org_id"):
                    self._meetings.setdefault(doc["org_id"], []).append(doc)
            for docs in self._meetings.values():
                docs.sort(key=lambda d: d["held_on"], reverse=True)
        return self._meetings.get(org, [])

    def checklist(self, member_id: str) -> list[Check]:
        member = self.store.get(member_id)
        if member is None or member.get("type") != "member":
            return []
        flow = open_flow(self.store, member_id)
        if flow is None:
            return []
        out: list[Check] = []
        records = _Records(self.store, member_id)
        home = flow.get("home_org_id") in self.subtree
        host = flow.get("host_org_id") in self.subtree
        if home:
            out += self.home(member, flow, records)
        if host:
            out += self.host(member, flow, records)
        out += self.member(member, flow, records, home)
        return out

    # -- evidence shared by several duties -------------------------------------------------------
    def contact(self, flow: dict[str, Any], records: _Records) -> dict[str, Any] | None:
        """The latest reached contact within the contact interval, if any."""
        days = (self.cfg.contact_days_abroad if flow.get("reason") == "study_abroad"
                else self.cfg.contact_days)
        since = max(flow["left_on"], (self.today - dt.timedelta(days=days)).isoformat())
        found = [c for c in records.of("contact") if c.get("reached")
                 and since <= c.get("on", "") <= self.iso]
        return max(found, key=lambda c: c["on"]) if found else None

    def contact_reason(self, flow: dict[str, Any], records: _Records) -> tuple[str, str]:
        days = (self.cfg.contact_days_abroad if flow.get("reason") == "study_abroad"
                else self.cfg.contact_days)
        reached = [c["on"] for c in records.of("contact") if c.get("reached")
                   and "" < c.get("on", "") <= self.iso]
        last = max(reached) if reached else None
        return (f"近 {days} 天没有联系上（上次联系上：{last or '无记录'}）",
                f"not reached in the last {days} days (last reached: {last or 'never'})")

    def vanguard(self, records: _Records) -> list[str]:
        return [v["id"] for v in records.of("vanguard")
                if (v.get("ended_on") or v.get("started_on") or self.iso) >= self.year_ago
                and (v.get("started_on") or "") <= self.iso]

    def appraisal_year(self, flow: dict[str, Any]) -> int | None:
        """The year whose appraisal is due for a member mobile then: last year, if the member
        had left by its end."""
        year = self.today.year - 1
        return year if flow["left_on"] <= f"{year}-12-31" else None

    # -- M-2.2 the home organization -------------------------------------------------------------
    def home(self, member: dict[str, Any], flow: dict[str, Any], records: _Records) -> list[Check]:
        fid = flow["id"]
        out = []
        where = any(flow.get(k) for k in ("host_org_id", "external_host", "destination_address",
                                          "destination_division_code", "destination_employer"))
        out.append(_check("M-2.2a", where, (fid,), ("", "") if where else (
            "流动登记未填写去向（流入地党组织或地址）",
            "the flow does not say where the member went (host organization or address)")))

        contact = self.contact(flow, records)
        person = flow.get("home_contact")
        if person and contact:
            out.append(_check("M-2.2b", True, (fid, contact["id"])))
        else:
            zh, en = [], []
            if not person:
                zh.append("未指定流出地联系人")
                en.append("no home contact person is designated")
            if not contact:
                czh, cen = self.contact_reason(flow, records)
                zh.append(czh)
                en.append(cen)
            out.append(_check("M-2.2b", False, (fid,) if person else (),
                              ("；".join(zh), "; ".join(en))))

        out.append(self.probation(member, records))

        studies = records.of("study")
        recent = [s for s in studies if self.year_ago <= s.get("on", "") <= self.iso]
        online = [s["id"] for s in recent if s.get("kind") == "online"]
        other = len(recent) - len(online)
        out.append(_check("M-2.2d", bool(online), online, ("", "") if online else (
            f"近一年没有网上学习记录（其他形式学习 {other} 次）",
            f"no online study in the last year ({other} other study record(s))")))

        roles = self.vanguard(records)
        out.append(_check("M-2.2e", bool(roles), roles, ("", "") if roles else (
            "近一年没有发挥作用的记录（示范岗、责任区、承诺、志愿服务）",
            "no vanguard role recorded in the last year (post, zone, pledge, volunteering)")))

        honours = [c["id"] for c in records.of("commendation")
                   if flow["left_on"] <= c.get("on", "") <= self.iso]
        if honours:
            out.append(_check("M-2.2f", True, honours))
        else:
            best = [a for a in records.of("appraisal") if a.get("result") == "excellent"]
            note_zh = f"（{max(a['year'] for a in best)} 年度评议为优秀）" if best else ""
            note_en = f" (appraised excellent for {max(a['year'] for a in best)})" if best else ""
            out.append(_check("M-2.2f", False, [a["id"] for a in best], (
                "流动期间没有表彰记录" + note_zh,
                "no commendation recorded while mobile" + note_en)))

        out.append(_check("M-2.2g", False, (), NO_RECORD))
        return out

    def probation(self, member: dict[str, Any], records: _Records) -> Check:
        """M-2.2c: a decision recorded for the probation that ends on ``probation_ends_on``."""
        converted = [r for r in records.of("probation_review") if r.get("decision") == "converted"]
        if member.get("standing") != "probationary" and converted:
            return _check("M-2.2c", True, [r["id"] for r in converted])  # converted: done
        if member.get("standing") != "probationary":
            return _check("M-2.2c", False, (member["id"],), (
                "不适用：正式党员", "does not apply: a full member"), applies=False)
        ends = member.get("probation_ends_on")
        reviews = records.of("probation_review")
        decided = [r for r in reviews if r.get("decision") and (
            r["decision"] != "extended" or not ends or r.get("due_on", "") >= ends)]
        if decided:
            return _check("M-2.2c", True, [r["id"] for r in decided])
        if not ends:
            return _check("M-2.2c", False, (member["id"],), (
                "预备党员未登记预备期满日期", "the end of probation is not recorded"))
        left = (dt.date.fromisoformat(ends) - self.today).days
        when_zh = f"还有 {left} 天" if left >= 0 else f"已逾期 {-left} 天"
        when_en = f"in {left} days" if left >= 0 else f"{-left} days ago"
        return _check("M-2.2c", False, [r["id"] for r in reviews] or [member["id"]], (
            f"预备期 {ends} 期满（{when_zh}），尚无转正决定",
            f"probation ends on {ends} ({when_en}); no decision is recorded"))

    # -- M-2.3 the host organization -------------------------------------------------------------
    def host(self, member: dict[str, Any], flow: dict[str, Any], records: _Records) -> list[Check]:
        fid, mid = flow["id"], member["id"]
        out = []
        reported = flow.get("reported_on")
        out.append(_check("M-2.3a", bool(reported), (fid,), ("", "") if reported else (
            "尚未登记报到", "no report-in is recorded")))

        contact = self.contact(flow, records)
        person = flow.get("host_contact")
        if person and contact:
            out.append(_check("M-2.3b", True, (fid, contact["id"])))
        else:
            zh, en = [], []
            if not person:
                zh.append("未指定流入地联系人")
                en.append("no host contact person is designated")
            if not contact:
                czh, cen = self.contact_reason(flow, records)
                zh.append(czh)
                en.append(cen)
            out.append(_check("M-2.3b", False, (fid,) if person else (),
                              ("；".join(zh), "; ".join(en))))

        held = self.meetings(flow["host_org_id"])
        attended = [d["id"] for d in held if mid in (d.get("attendee_ids") or ())]
        n = self.cfg.no_attendance_months
        out.append(_check("M-2.3c", bool(attended), attended, ("", "") if attended else (
            f"近 {n} 个月未参加本组织的组织生活（本组织期间召开 {len(held)} 次）",
            f"attended none of this organization's {len(held)} meeting(s) in the last "
            f"{n} months")))

        care = [c["id"] for c in records.of("care") if self.year_ago <= c.get("on", "") <= self.iso]
        out.append(_check("M-2.3d", bool(care), care, ("", "") if care else (
            "近一年没有关怀帮扶记录", "no care or assistance recorded in the last year")))

        year = self.appraisal_year(flow)
        found = [a["id"] for a in records.of("appraisal")
                 if a.get("year") in ((year, self.today.year) if year else (self.today.year,))]
        if found:
            out.append(_check("M-2.3e", True, found))
        elif year is None:
            out.append(_check("M-2.3e", False, (fid,), (
                f"本年度流入（{flow['left_on']} 外出），年度评议尚未到期",
                f"arrived this year (left on {flow['left_on']}); the yearly appraisal is not "
                "due yet"), applies=False))
        else:
            out.append(_check("M-2.3e", False, (), (
                f"缺少 {year} 年度民主评议", f"no democratic appraisal for {year}")))

        out.append(_check("M-2.3f", False, (), NO_RECORD))
        return out

    # -- M-2.4 the member ------------------------------------------------------------------------
    def member(self, member: dict[str, Any], flow: dict[str, Any], records: _Records,
               home: bool) -> list[Check]:
        fid = flow["id"]
        out = []
        registered = hlc_date(flow["created_at"]).isoformat()
        before = registered <= flow["left_on"]
        out.append(_check("M-2.4a", before, (fid,), ("", "") if before else (
            f"流动登记于 {registered}，晚于外出日期 {flow['left_on']}：没有记录表明外出前已报告",
            f"the flow was registered on {registered}, after leaving on {flow['left_on']}: "
            "no record shows a report before leaving")))

        reported = flow.get("reported_on")
        away = (self.today - dt.date.fromisoformat(flow["left_on"])).days
        out.append(_check("M-2.4b", bool(reported), (fid,), ("", "") if reported else (
            f"尚未向流入地党组织报到（外出 {away} 天）",
            f"has not reported to the host organization ({away} days after leaving)")))

        contact = self.contact(flow, records) if home else None
        if contact:
            out.append(_check("M-2.4c", True, (contact["id"],)))
        elif not home:
            out.append(_check("M-2.4c", False, (), (
                "流出地党组织的联系记录不在本组织", "the home organization's contact records are "
                "not held here")))
        else:
            out.append(_check("M-2.4c", False, (), self.contact_reason(flow, records)))

        out.append(_check("M-2.4d", False, (), NO_RECORD))

        roles = self.vanguard(records)
        out.append(_check("M-2.4e", bool(roles), roles, ("", "") if roles else (
            "近一年没有发挥先锋模范作用的记录", "no vanguard role recorded in the last year")))
        return out


class _Records:
    """One member's records by type, read through the per-member index once per type."""

    def __init__(self, store: Store, member_id: str) -> None:
        self.store = store
        self.member_id = member_id
        self._by_type: dict[str, list[dict[str, Any]]] = {}

    def of(self, type_name: str) -> list[dict[str, Any]]:
        if type_name not in self._by_type:
            self._by_type[type_name] = self.store.state.records_of(self.member_id, type_name)
        return self._by_type[type_name]
