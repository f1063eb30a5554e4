"""The demo's register: plausible members, flows, contacts and branch life, written through the
store API (one batch per kind of record, so a few hundred members take a fraction of a second).

Every date is relative to ``today``, so the worklist has items of every kind whatever the day:
reports overdue, contacts due, members lost, a probation ending, a transfer receipt late. The
steps follow the order in which they can happen: a host records what it hosts only after a sync
brought it the flow (tui/demo.py runs the syncs between the steps).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from store import Store
from store.batch import Batch
from store.validate import id_check_char

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN_MALE = "伟强磊军洋勇杰涛明超辉刚平建国志华文斌俊峰鹏飞宇浩亮成林海波"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲桂兰萍红梅琳燕雪慧颖佳倩婷"
REGION = "411522"  # 光山县, Henan: the demo county's division code
# Where the branch's members go: division code, address, employer, host organization outside
# the system (None: no organization there has taken them in yet).
DESTINATIONS = [
    ("440305", "广东省深圳市南山区科技园", "深圳某电子科技有限公司", "南山区科技园综合党委"),
    ("440306", "广东省深圳市宝安区福永街道", "深圳某模具厂", "福永街道非公企业党委"),
    ("310115", "上海市浦东新区张江镇", "上海某生物医药公司", "张江镇两新组织党委"),
    ("330106", "浙江省杭州市西湖区", "杭州某网络科技公司", None),
    ("320505", "江苏省苏州市虎丘区", "苏州某精密制造公司", "苏州高新区非公企业党委"),
    ("110105", "北京市朝阳区望京街道", "北京某物流公司", None),
    ("500112", "重庆市渝北区", "重庆某建筑劳务公司", "渝北区流动党员党支部"),
    ("350203", "福建省厦门市思明区", "厦门某外贸公司", None),
    ("420106", "湖北省武汉市武昌区", "武汉某装饰工程公司", "武昌区两新工委"),
]
OUTSIDE_HOMES = ["安徽省六安市金寨县某村党支部", "湖北省黄冈市麻城市某社区党支部",
                 "四川省南充市某村党支部", "河南省商城县某村党支部"]
SECRETARY, ORGANIZER = "李建国", "王秀英"
THEME_DAYS = ["学习贯彻党的二十届三中全会精神", "重温入党誓词", "乡村振兴政策宣讲", "防汛救灾动员",
              "红色教育基地参观", "人居环境整治志愿服务", "学习《中国共产党章程》", "七一主题党日",
              "流动党员座谈（线上）", "廉洁文化教育", "秋收助农志愿服务", "年终工作总结"]
APPLICANTS = ["陈浩", "刘婷", "赵宇"]
STUDY_TOPICS = ["党的二十届三中全会精神", "《中国共产党章程》", "习近平新时代中国特色社会主义思想",
                "党纪学习教育", "乡村振兴战略", "新修订的《中国共产党纪律处分条例》"]


@dataclass
class Orgs:
    """The county's organizations the demo uses (their ids on the county server)."""

    county: str
    town: str
    home: str  # the demo branch
    host: str  # the second branch: host of some of the demo's outflows, home of some inflows


@dataclass
class Story:
    """Ids the later steps use: who is hosted where, and whom the conflicts are about."""

    hosted_at_host: list[tuple[str, str]] = field(default_factory=list)  # (member, flow)
    overdue_at_host: str = ""  # a flow the host branch has not recorded a report-in for
    probation_hosted: str = ""  # a probation review whose conduct report the host writes
    at_home: list[str] = field(default_factory=list)  # members with no open flow
    drifting: list[str] = field(default_factory=list)  # stopped coming to meetings
    outflows: dict[str, str] = field(default_factory=dict)  # member → left_on, open outflows
    inflows: dict[str, str] = field(default_factory=dict)  # member → arrived, hosted here
    conflict_member: str = ""
    conflict_notes: str = ""
    conflict_flow: str = ""
    receipts: list[tuple[str, str]] = field(default_factory=list)  # (transfer, received_on)


class People:
    """Plausible people: Chinese names, ID numbers that pass the checksum (unique across the
    demo's stores), mobile numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ids: set[str] = set()

    def id_number(self, born: dt.date, male: bool) -> str:
        while True:
            seq = self.rng.randrange(0, 1000)
            if (seq % 2 == 1) != male:
                seq = (seq + 1) % 1000
            body = f"{REGION}{born:%Y%m%d}{seq:03d}"
            number = body + id_check_char(body)
            if number not in self.ids:
                self.ids.add(number)
                return number

    def phone(self) -> str:
        return self.rng.choice(["13", "15", "18", "17", "19"]) + f"{self.rng.randrange(10**9):09d}"

    def name(self, male: bool) -> str:
        pool = GIVEN_MALE if male else GIVEN_FEMALE
        return self.rng.choice(SURNAMES) + "".join(
            self.rng.choice(pool) for _ in range(self.rng.choice((1, 2, 2))))

    def member(self, today: dt.date, home_org_id: str, *, name: str | None = None,
               male: bool | None = None, born: dt.date | None = None,
               oldest: int = 1950, youngest: int = 2003) -> dict[str, Any]:
        rng = self.rng
        male = rng.random() < 0.62 if male is None else male
        born = born or dt.date(rng.randint(oldest, youngest), rng.randint(1, 12),
                               rng.randint(1, 28))
        joined = dt.date(born.year + rng.randint(19, 40), rng.randint(1, 12), rng.randint(1, 28))
        joined = max(min(joined, today - dt.timedelta(days=500)),
                     dt.date(born.year + 18, born.month, born.day) + dt.timedelta(days=1))
        return {"name": name or self.name(male), "gender": "male" if male else "female",
                "birth_date": born.isoformat(), "id_number": self.id_number(born, male),
                "phone": self.phone(), "ethnicity": "回族" if rng.random() < 0.03 else "汉族",
                "education": rng.choice(["primary", "junior", "junior", "senior", "senior",
                                         "college", "bachelor"]),
                "standing": "full", "joined_on": joined.isoformat(),
                "home_org_id": home_org_id}


def _day(today: dt.date, days_ago: int) -> str:
    return (today - dt.timedelta(days=days_ago)).isoformat()


def _after(start: str, rng: random.Random, low: int, high: int, today: dt.date) -> str:
    """A day ``low``–``high`` days after ``start``, never after today."""
    day = dt.date.fromisoformat(start) + dt.timedelta(days=rng.randint(low, high))
    return min(day, today).isoformat()


def _early_in_year(today: dt.date, day: int) -> str:
    """A day in January this year (when last year's appraisals are reported), or today."""
    return min(dt.date(today.year, 1, day), today).isoformat()


def _flow_values(rng: random.Random, left: str, *, external: bool = True) -> dict[str, Any]:
    code, address, employer, host = rng.choice(DESTINATIONS)
    values: dict[str, Any] = {
        "left_on": left, "reason": rng.choice(["work"] * 8 + ["study", "residence"]),
        "destination_division_code": code, "destination_address": address,
        "destination_employer": employer, "certificate_no": f"豫信流{rng.randrange(10**6):06d}",
    }
    if external and host:
        values["external_host"] = host
    if rng.random() < 0.93:
        values["home_contact"] = rng.choice([SECRETARY, ORGANIZER])
    return values


# -- the demo branch, before the host branch's flows arrive ------------------------------------------

def build_home(store: Store, orgs: Orgs, people: People, members: int, today: dt.date,
               story: Story, rng: random.Random) -> None:
    """The demo branch's own register: members, flows in every state, contacts, transfers,
    probation, inflows from outside the system, study, care and the rest."""
    own = orgs.home
    rows: list[dict[str, Any]] = [
        people.member(today, own, name=SECRETARY, male=True, born=dt.date(1968, 3, 14)),
        people.member(today, own, name=ORGANIZER, male=False, born=dt.date(1979, 11, 2)),
        people.member(today, own, name="张三", male=True, born=dt.date(1988, 5, 12)),
        people.member(today, own, name="单丽", male=False, born=dt.date(1992, 9, 3)),
    ]
    while len(rows) < members:
        rows.append(people.member(today, own))
    for row in rows:
        if rng.random() < 0.08:
            row["notes"] = rng.choice(["村民小组长", "种植大户", "退役军人", "村医", "致富带头人"])
    with store.batch(today) as b:
        ids = [b.put("member", row) for row in rows]
    by_name = dict(zip((r["name"] for r in rows[:4]), ids[:4], strict=True))
    others = ids[4:]
    rng.shuffle(others)
    n = len(others)
    take = iter(others)

    def pick(count: int) -> list[str]:
        return [next(take) for _ in range(min(count, n))]

    outflow_ext = pick(round(n * 0.2))
    outflow_host = [by_name["单丽"], *pick(max(4, n // 30))]
    unknown_host = pick(2)
    returned = pick(round(n * 0.07))
    transferred = pick(2)
    ended_other = pick(1)
    story.drifting = pick(3)
    probationary = pick(1)
    story.at_home = [i for i in ids if i not in set(outflow_ext + outflow_host + unknown_host
                                                     + transferred)]
    with store.batch(today) as b:
        _flows(b, story, orgs, rng, today, outflow_ext, outflow_host, unknown_host, returned,
               transferred, ended_other)
        story.probation_hosted = _probation(b, today, probationary[0] if probationary
                                            else None, outflow_host[1])
    with store.batch(today) as b:  # the receipts came back (a step of its own: M-1.4)
        for transfer_id, received_on in story.receipts:
            b.put("transfer", {"received_on": received_on, "status": "received"}, transfer_id)
    story.conflict_member = rng.choice([i for i in story.at_home if i not in story.drifting])
    story.conflict_notes = by_name["张三"]
    story.conflict_flow = story.hosted_at_host[-1][1]
    with store.batch(today) as b:
        _contacts(b, story, rng, today)
    with store.batch(today) as b:
        gone = _inflows_from_outside(b, story, people, orgs, rng, today, max(3, members // 40))
        _branch_life(b, store, story, orgs, rng, today)
    with store.batch(today) as b:
        for member_id, flow_id in gone:
            b.put("flow", {"status": "ended", "ended_on": _day(today, 30),
                           "end_reason": "returned"}, flow_id)
            b.put("member", {"archived": "departed"}, member_id)


def _flows(b: Batch, story: Story, orgs: Orgs, rng: random.Random, today: dt.date,
           outflow_ext: list[str], outflow_host: list[str], unknown_host: list[str],
           returned: list[str], transferred: list[str], ended_other: list[str]) -> None:
    for i, member_id in enumerate(outflow_ext):
        # the first few are the worklist's: two recent and pending, three overdue, and one
        # settled for more than a year (a transfer suggested; below, one issued)
        days = [12, 20, 45, 70, 110, 430][i] if i < 6 else rng.randint(10, 1100)
        left = _day(today, days)
        values = _flow_values(rng, left)
        if rng.random() < 0.3:
            values["expected_until"] = _after(left, rng, 200, 700, dt.date.max)
        pending = i < 5 or (days < 30 and rng.random() < 0.5)
        if not pending:
            # the host is outside the system: the home branch records the report-in (M-1.3)
            values.update(reported_on=_after(left, rng, 3, 25, today), status="reported")
        else:
            values["status"] = "pending_report"
        if rng.random() < 0.15 and days < 700:
            # went away before and came back
            first = _day(today, days + rng.randint(400, 900))
            b.put("flow", {"member_id": member_id, **_flow_values(rng, first),
                           "reported_on": _after(first, rng, 3, 20, today),
                           "status": "ended", "ended_on": _after(first, rng, 120, 300, today),
                           "end_reason": "returned"})
        b.put("flow", {"member_id": member_id, **values})
        story.outflows[member_id] = left
    for i, member_id in enumerate(outflow_host):
        days = 7 if i == 0 else 50 if i == 2 else rng.randint(30, 600)
        left = _day(today, days)
        flow_id = b.put("flow", {
            "member_id": member_id, "left_on": left, "reason": "work",
            "host_org_id": orgs.host, "destination_division_code": REGION,
            "destination_address": "河南省信阳市光山县城关镇东关村",
            "destination_employer": rng.choice(["光山县某羽绒服装厂", "东关村茶叶合作社",
                                                "光山县某电商产业园"]),
            "home_contact": SECRETARY, "status": "pending_report"})
        story.hosted_at_host.append((member_id, flow_id))
        story.outflows[member_id] = left
        if i == 2:
            story.overdue_at_host = flow_id
    for member_id in unknown_host:
        left = _day(today, rng.randint(35, 90))
        b.put("flow", {"member_id": member_id, "left_on": left, "reason": "work",
                       "destination_address": rng.choice(["广东省东莞市", "浙江省义乌市"]),
                       "status": "pending_report"})
        story.outflows[member_id] = left
    reasons = [(m, "returned") for m in returned] + [(m, "transferred") for m in transferred] \
        + [(m, "other") for m in ended_other]
    for member_id, reason in reasons:
        left = _day(today, rng.randint(500, 1500))
        ended = _after(left, rng, 180, 420, today - dt.timedelta(days=60))
        b.put("flow", {"member_id": member_id, **_flow_values(rng, left),
                       "reported_on": _after(left, rng, 3, 20, today), "status": "ended",
                       "ended_on": ended, "end_reason": reason})
        if reason == "transferred":
            # membership moved to the host; the receipt came back
            issued = _after(ended, rng, -20, -5, today)
            story.receipts.append((b.put("transfer", {
                "member_id": member_id, "from_org_id": orgs.home,
                "to_org_text": rng.choice([d[3] for d in DESTINATIONS if d[3]]),
                "letter_no": f"光组转〔{issued[:4]}〕{rng.randint(10, 99)}号",
                "dues_paid_until": issued[:7], "valid_days": 30, "issued_on": issued,
                "receipt_due_on": _after(issued, rng, 30, 30, dt.date.max),
                "status": "issued"}), _after(issued, rng, 8, 25, today)))
            b.put("member", {"archived": "transferred"}, member_id)
    # settled for more than a year with a host outside: a transfer issued, its receipt late
    settled = outflow_ext[5]
    issued = _day(today, 40)
    b.put("transfer", {
        "member_id": settled, "from_org_id": orgs.home,
        "to_org_text": "南山区科技园综合党委", "letter_no": f"光组转〔{today.year}〕07号",
        "dues_paid_until": issued[:7], "valid_days": 30, "issued_on": issued,
        "receipt_due_on": _day(today, 10), "status": "issued"})


def _probation(b: Batch, today: dt.date, at_home: str | None, hosted: str) -> str:
    """Two probationary members whose conversion is due within 30 days: one at home, one away
    at the host branch, which writes the conduct report (M-2.2c). Returns that one's review."""
    hosted_review = ""
    for member_id, due_in in ((at_home, 18), (hosted, 26)):
        if member_id is None:
            continue
        due = today + dt.timedelta(days=due_in)
        joined = due - dt.timedelta(days=365)
        b.put("member", {"standing": "probationary", "joined_on": joined.isoformat(),
                         "probation_ends_on": due.isoformat()}, member_id)
        review = b.put("probation_review", {"member_id": member_id, "due_on": due.isoformat()})
        if member_id == hosted:
            hosted_review = review
    return hosted_review


def _contacts(b: Batch, story: Story, rng: random.Random, today: dt.date) -> None:
    """Contacts with members away: most reached lately, some due (no reached contact for 90
    days), some lost (none for more than six months, only unanswered calls)."""
    lost = 0
    for member_id, left in story.outflows.items():
        flow = _open_flow(b, member_id)
        away = (today - dt.date.fromisoformat(left)).days
        roll = rng.random()
        if away < 100:
            kind = "fresh" if roll < 0.7 else "none"
        elif away > 220 and (lost < 3 or roll < 0.08):
            kind = "lost"
            lost += 1
        elif roll < 0.3:
            kind = "due"
        else:
            kind = "fresh"
        if kind == "fresh":
            last = rng.randint(2, min(80, away))
        elif kind == "due":
            last = rng.randint(100, min(170, away))
        elif kind == "lost":
            last = rng.randint(200, min(away, 400))
        else:
            last = away
        day = away
        while day > last + 20:
            day -= rng.randint(40, 120)
            if day <= last:
                break
            _contact(b, member_id, flow, _day(today, day), True, rng)
        if kind != "none":
            _contact(b, member_id, flow, _day(today, last), True, rng)
        if kind == "lost":
            for ago in sorted(rng.sample(range(5, last - 10), k=min(3, max(1, (last - 15) // 60))),
                              reverse=True):
                _contact(b, member_id, flow, _day(today, ago), False, rng)
            b.put("member", {"lost_contact_since": _day(today, last - 180)}, member_id)


def _open_flow(b: Batch, member_id: str) -> str | None:
    found = [f for f in b.flows_of(member_id) if f.fields.get("status") != "ended"]
    return found[0].rec_id if found else None


def _contact(b: Batch, member_id: str, flow_id: str | None, on: str, reached: bool,
             rng: random.Random) -> None:
    summary = rng.choice(["工作稳定，身体健康", "已参加流入地组织生活", "提醒按时交纳党费",
                          "了解到更换了工作单位", "春节返乡时见面交流", "询问家中老人情况，已帮助协调"]
                         ) if reached else rng.choice(["电话未接通", "微信未回复", "号码已停机"])
    b.put("contact", {"member_id": member_id, "flow_id": flow_id, "on": on,
                      "channel": rng.choice(["phone", "wechat", "wechat", "visit"]
                                            if reached else ["phone", "wechat"]),
                      "reached": reached, "by": rng.choice([SECRETARY, ORGANIZER]),
                      "summary": summary})


def _inflows_from_outside(b: Batch, story: Story, people: People, orgs: Orgs,
                          rng: random.Random, today: dt.date, count: int,
                          ) -> list[tuple[str, str]]:
    """Members whose home organization is outside the system, hosted here (M-2.3a): one
    arrived lately and not reported yet, one overdue, one gone home again (ended in a later
    commit: the server judges a record's changes in one commit together, and an ended flow
    cannot be made with the host's report-in on it)."""
    gone: list[tuple[str, str]] = []
    for i in range(count):
        person = people.member(today, orgs.home, oldest=1968, youngest=2000)
        del person["home_org_id"]
        person["external_home_org"] = rng.choice(OUTSIDE_HOMES)
        days = [10, 48, 300][i] if i < 3 else rng.randint(40, 700)
        arrived = _day(today, days)
        member_id = b.put("member", person)
        values: dict[str, Any] = {
            "member_id": member_id, "host_org_id": orgs.home, "left_on": arrived,
            "reason": "work", "destination_division_code": REGION,
            "destination_address": "河南省信阳市光山县城关镇城关村",
            "destination_employer": rng.choice(["光山县某羽绒服装厂", "城关村茶叶合作社"])}
        if i >= 2:
            values.update(reported_on=_after(arrived, rng, 2, 12, today), status="reported")
            if rng.random() < 0.8:
                values["host_contact"] = ORGANIZER
        else:
            values["status"] = "pending_report"
        flow_id = b.put("flow", values)
        if i == 2:
            gone.append((member_id, flow_id))
            continue
        story.inflows[member_id] = arrived
    return gone


def _branch_life(b: Batch, store: Store, story: Story, orgs: Orgs, rng: random.Random,
                 today: dt.date) -> None:
    """Study, care, vanguard roles, commendations, last year's appraisals, applications,
    funds and the reply to a county task."""
    last_year = today.year - 1
    members = list(story.at_home)
    for member_id in rng.sample(members, k=int(len(members) * 0.6)):
        for _ in range(rng.randint(1, 2)):
            b.put("study", {"member_id": member_id, "on": _day(today, rng.randint(5, 330)),
                            "kind": rng.choice(["campaign", "lesson", "online", "self"]),
                            "topic": rng.choice(STUDY_TOPICS), "hours": rng.randint(2, 8)})
    for member_id in rng.sample(sorted(story.outflows), k=min(len(story.outflows), 25)):
        b.put("study", {"member_id": member_id, "on": _day(today, rng.randint(5, 200)),
                        "kind": "online", "topic": rng.choice(STUDY_TOPICS),
                        "hours": rng.randint(2, 6)})
    # appraisals for last year at home; those away are the host's to give (M-2.3e)
    appraised = [m for m in members if m not in story.outflows and m not in story.drifting]
    for member_id in appraised:
        if rng.random() < 0.92:
            b.put("appraisal", {"member_id": member_id, "year": last_year,
                                "by_org_id": orgs.home,
                                "result": rng.choice(["qualified"] * 6 + ["excellent"] * 2
                                                     + ["basically_qualified"])})
    elders = rng.sample(members, k=min(8, len(members)))
    for member_id, (kind, text, amount) in zip(elders, [
            ("hardship", "老党员生活困难补助", "800"), ("condolence", "春节走访慰问老党员", "300"),
            ("condolence", "七一走访慰问", "300"), ("hardship", "因病住院慰问", "1000"),
            ("employment", "返乡党员就业推荐：县羽绒服装产业园", None),
            ("training", "电商直播技能培训", None), ("business", "返乡创业贴息贷款协调", None),
            ("rights", "协助追讨拖欠工资", None)], strict=False):
        values = {"member_id": member_id, "on": _day(today, rng.randint(10, 300)), "kind": kind,
                  "description": text, "by_org_id": orgs.home}
        if amount:
            values.update(amount_yuan=amount, fund_source="党内关怀帮扶资金")
        b.put("care", values)
    for member_id, (kind, title) in zip(rng.sample(members, k=min(5, len(members))), [
            ("demonstration_post", "便民服务站党员示范岗"), ("responsibility_zone", "第三村民组环境整治责任区"),
            ("volunteer", "防汛志愿服务队"), ("pledge", "承诺为群众办实事：修缮村组道路"),
            ("volunteer", "茶园助农志愿服务")], strict=False):
        b.put("vanguard", {"member_id": member_id, "kind": kind, "title": title,
                           "started_on": _day(today, rng.randint(60, 400)),
                           "hours": rng.randint(10, 80)})
    for member_id in rng.sample(appraised, k=min(3, len(appraised))):
        b.put("commendation", {"member_id": member_id, "on": f"{last_year}-07-01",
                               "title": "优秀共产党员", "by_org_id": orgs.town})
    for i, stage in enumerate(["applicant", "activist", "candidate"]):
        male = i != 1
        b.put("application", {"org_id": orgs.home, "person_name": APPLICANTS[i],
                              "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                              "received_on": _day(today, 90 + 300 * i), "stage": stage,
                              "notes": "返乡创业青年" if male else "村妇女主任"})
    for on, kind, purpose, amount, note in [
            (_day(today, 200), "allocation", "activities", "5000.00", "县委组织部年度党建活动经费"),
            (_day(today, 120), "expense", "activities", "1260.00", "七一主题党日活动"),
            (_day(today, 60), "expense", "condolence", "1100.00", "走访慰问困难党员"),
            (_day(today, 25), "expense", "education", "800.00", "流动党员线上学习资料")]:
        b.put("fund", {"org_id": orgs.home, "on": on, "kind": kind, "purpose": purpose,
                       "amount_yuan": amount, "note": note})
    done = [t for t in store.live("task") if t.get("title", "").startswith("报送")]
    for task in done:
        b.put("task_reply", {"task_id": task["id"], "org_id": orgs.home, "status": "done",
                             "note": "已按要求报送", "done_on": _day(today, 20)})


# -- the host branch ----------------------------------------------------------------------------

def build_host(store: Store, orgs: Orgs, people: People, members: int, today: dt.date,
               rng: random.Random) -> None:
    """The second branch: its members, some of them away at the demo branch (which hosts them
    there: inflows from another branch in the system) and some elsewhere."""
    rows = [people.member(today, orgs.host) for _ in range(members)]
    with store.batch(today) as b:
        ids = [b.put("member", row) for row in rows]
    away = max(5, members // 8)
    with store.batch(today) as b:
        for i, member_id in enumerate(ids[:away]):
            days = [15, 55][i] if i < 2 else rng.randint(60, 500)
            left = _day(today, days)
            flow = b.put("flow", {
                "member_id": member_id, "left_on": left, "reason": "work",
                "host_org_id": orgs.home, "destination_division_code": REGION,
                "destination_address": "河南省信阳市光山县城关镇城关村",
                "destination_employer": rng.choice(["城关村茶叶合作社", "光山县某羽绒服装厂"]),
                "home_contact": "周书记", "status": "pending_report"})
            _contact(b, member_id, flow, _after(left, rng, 5, 40, today), True, rng)
        for member_id in ids[away: away + members // 6]:
            left = _day(today, rng.randint(20, 800))
            values = _flow_values(rng, left)
            values.update(reported_on=_after(left, rng, 3, 25, today), status="reported")
            flow = b.put("flow", {"member_id": member_id, **values})
            _contact(b, member_id, flow, _after(left, rng, 30, 200, today), True, rng)


def host_records(store: Store, story: Story, orgs: Orgs, today: dt.date,
                 rng: random.Random) -> None:
    """The second branch records what it does for the demo branch's members it hosts: the
    report-ins (but one, overdue), contact people, last year's appraisals, the conduct report of
    a probationary member, their attendance at its meetings."""
    with store.batch(today) as b:
        for member_id, flow_id in story.hosted_at_host:
            flow = b.lookup(flow_id)
            if flow is None:
                continue
            left = flow["left_on"]
            if flow_id != story.overdue_at_host and left < _day(today, 10):
                b.put("flow", {"reported_on": _after(left, rng, 2, 9, today),
                               "status": "reported", "host_contact": "周书记"}, flow_id)
            if left < f"{today.year - 1}-07-01":
                b.put("appraisal", {"member_id": member_id, "year": today.year - 1,
                                    "by_org_id": orgs.host, "result": "qualified",
                                    "notified_home_on": _early_in_year(today, 20)})
        review = story.probation_hosted
        if review and b.lookup(review) is not None:
            b.put("probation_review", {"host_conduct_report": "在东关村羽绒服装厂务工期间表现良好，"
                                       "按时参加组织生活，积极参与防汛志愿服务。"}, review)
        hosted = [m for m, _ in story.hosted_at_host]
        away = {f["member_id"] for f in store.live("flow") if f.get("status") != "ended"}
        at_home = [m["id"] for m in store.live("member")
                   if m.get("home_org_id") == orgs.host and m["id"] not in away]
        for months in range(5, -1, -1):
            held = today.replace(day=1) - dt.timedelta(days=30 * months - 14)
            if held > today:
                continue
            present = [m for m in hosted if story.outflows.get(m, "9999") < held.isoformat()]
            own = [m for m in at_home if rng.random() < 0.8]
            b.put("meeting", {"org_id": orgs.host, "kind": "theme_day", "held_on": held.isoformat(),
                              "topic": rng.choice(THEME_DAYS), "attendee_ids": own + present})


# -- the demo branch again, once the host branch's flows have arrived ----------------------------

def host_here(store: Store, story: Story, orgs: Orgs, today: dt.date,
              rng: random.Random) -> None:
    """The demo branch as a host: report-ins of members from the other branch, and a year of
    meetings with attendance, inflow members included (M-3.2)."""
    with store.batch(today) as b:
        for flow in list(store.live("flow")):
            if flow.get("host_org_id") != orgs.home or flow.get("home_org_id") != orgs.host:
                continue
            story.inflows[flow["member_id"]] = flow["left_on"]
            if flow["status"] == "pending_report" and flow["left_on"] < _day(today, 60):
                b.put("flow", {"reported_on": _after(flow["left_on"], rng, 2, 15, today),
                               "status": "reported", "host_contact": ORGANIZER}, flow["id"])
            if flow["left_on"] < f"{today.year - 1}-06-01" and rng.random() < 0.5:
                b.put("appraisal", {"member_id": flow["member_id"], "year": today.year - 1,
                                    "by_org_id": orgs.home, "result": "qualified",
                                    "notified_home_on": _early_in_year(today, 15)})
        # the host keeps in touch with those it hosts too (M-2.3b); a few it has not reached
        for member_id, arrived in story.inflows.items():
            here = (today - dt.date.fromisoformat(arrived)).days
            if here > 20 and rng.random() < 0.85:
                _contact(b, member_id, _open_flow(b, member_id),
                         _day(today, rng.randint(3, min(here, 80))), True, rng)
        _meetings(b, story, orgs, rng, today)


def _meetings(b: Batch, story: Story, orgs: Orgs, rng: random.Random, today: dt.date) -> None:
    drifting = set(story.drifting)
    home = [m for m in story.at_home if not (b.lookup(m) or {"archived": True}).get("archived")]
    plan: list[tuple[int, str, str]] = []
    for months in range(12, 0, -1):
        plan.append((months * 30 - 10, "theme_day", THEME_DAYS[(12 - months) % len(THEME_DAYS)]))
        if months % 3 == 0:
            plan.append((months * 30 - 3, "party_lesson", "书记讲党课：" + rng.choice(STUDY_TOPICS)))
            plan.append((months * 30 - 20, "committee", "研究流动党员管理工作"))
    plan += [(300, "branch_congress", "讨论接收预备党员"), (100, "branch_congress", "选举支部委员会"),
             (max(5, (today - dt.date(today.year, 1, 20)).days), "life_meeting",
              f"{today.year - 1}年度组织生活会"),
             (max(4, (today - dt.date(today.year, 1, 21)).days), "appraisal",
              f"{today.year - 1}年度民主评议党员")]
    committee = home[:5]
    for days_ago, kind, topic in sorted(plan, reverse=True):
        held = _day(today, days_ago)
        if kind == "committee":
            b.put("meeting", {"org_id": orgs.home, "kind": kind, "held_on": held,
                              "topic": topic, "attendee_ids": committee})
            continue
        present, absent = [], []
        # members away now who left after the meeting were at home then
        for m in home + [m for m, left in story.outflows.items() if left >= held]:
            if m in drifting and days_ago < 240:
                continue  # stopped coming: a mobile member not yet registered? (M-1.1)
            if rng.random() < 0.9:
                present.append(m)
            elif rng.random() < 0.5:
                absent.append({"member_id": m, "reason": rng.choice(["生病住院", "外出办事", "家中有事"])})
        for m, left in story.outflows.items():
            if left < held and b.lookup(m) is not None:
                absent.append({"member_id": m, "reason": "外出务工"})
        present += [m for m, arrived in story.inflows.items()
                    if arrived < held and b.lookup(m) is not None and rng.random() < 0.75]
        b.put("meeting", {"org_id": orgs.home, "kind": kind, "held_on": held, "topic": topic,
                          "attendee_ids": present, "absences": absent or None})


# -- the conflicts ------------------------------------------------------------------------------

def edit_for_conflict(store: Store, story: Story, today: dt.date, side: str,
                      people: People) -> None:
    """One side's edits of the fields both sides will have changed: a member's phone, another's
    notes, a flow's employer. ``side`` is "town" (synced first) or "home"."""
    town = side == "town"
    with store.batch(today) as b:
        b.put("member", {"phone": people.phone()}, story.conflict_member)
        b.put("member", {"notes": "镇党委核实：已在县城买房，常住城区" if town
                         else "在村里开农资店，常住本村"}, story.conflict_notes)
        b.put("flow", {"destination_employer": "光山县某电商产业园（镇里核实）" if town
                       else "东关村茶叶合作社（本人电话告知）"}, story.conflict_flow)


def newcomer(people: People, today: dt.date, orgs: Orgs) -> dict[str, Any]:
    """A member who moved here, registered by both the town committee and the branch."""
    row = people.member(today, orgs.home, name="周志强", male=True, born=dt.date(1986, 8, 21))
    row["notes"] = "由外县转入，组织关系已接收"
    return row
