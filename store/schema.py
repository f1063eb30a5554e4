"""The register's schema, declared once as data (DESIGN §2.2).

Validation, command-line flags, forms, import/export columns and sync ownership are all derived
from the tables below; nothing else in the code base lists a record type's fields again.

Field kinds:
  text, longtext     free text (stripped; length-limited)
  date               ISO ``YYYY-MM-DD`` that exists; ``past`` ones may not lie in the future
  month              ``YYYY-MM``
  year               a calendar year
  int, hours, money  non-negative numbers (money in yuan with at most two decimals, kept as text)
  bool               yes/no
  enum               one of ``choices``
  ref, refs          id(s) of existing records of type ``ref``
  id_number          GB 11643 resident identity number
  phone              mainland mobile number ``1[3-9]\\d{9}``
  division_code      GB/T 2260 administrative division code (6, 9 or 12 digits)
  absences           list of ``{"member_id", "reason"}`` (meeting absences with reasons)
  json               any JSON value (written by the county server only)

  name               a person's name: spaces inside a Chinese name are removed

Ownership (DESIGN §3.3) says which side of a flow may write a field: ``home`` (the organization
holding the membership), ``host`` (the organization where the member now is), ``writer`` (the
organization that made the record, e.g. the host's meetings and appraisals), ``any`` (whoever
sees the record) or ``server`` (only the county server writes it). A ``fixed`` field is set when
the record is made and never changed: the fields that anchor a record's scope are fixed, except
those whose owner moves the record on purpose (a member's home, a flow's host).

Scope says which organizations a record belongs to, and so which devices hold it; each record
type declares it (``Scope`` below) and ``store/scope.py`` interprets it, on the device (to refuse
an edit as it is typed) and on the county server (to authorize and route every op).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Choice lists: value, Chinese label, English label.
CHOICES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "org_kind": (
        ("province", "省级党委", "province"),
        ("city", "市级党委", "city"),
        ("county", "县级党委", "county"),
        ("committee", "基层党委", "grassroots committee"),
        ("branch", "党支部", "branch"),
        ("mobile_branch", "流动党员党组织", "mobile-member organization"),
    ),
    "gender": (("male", "男", "male"), ("female", "女", "female")),
    "education": (
        ("primary", "小学", "primary school"),
        ("junior", "初中", "junior middle school"),
        ("senior", "高中/中专", "senior middle / vocational"),
        ("college", "大专", "college"),
        ("bachelor", "本科", "bachelor"),
        ("master", "硕士", "master"),
        ("doctor", "博士", "doctorate"),
    ),
    "standing": (("full", "正式党员", "full member"), ("probationary", "预备党员", "probationary")),
    # Not a stored field: derived from the open flow and the organization looking (scope.py).
    "mobility": (
        ("none", "非流动", "not mobile"),
        ("outflow", "流出", "outflow"),
        ("inflow", "流入", "inflow"),
    ),
    "archived": (
        ("transferred", "已转出", "transferred out"),
        ("deceased", "已去世", "deceased"),
        ("left", "已出党", "left the party"),
        ("departed", "已离开本地", "no longer hosted here"),
        ("disqualified", "已取消预备党员资格", "probationary membership cancelled"),
        ("other", "其他", "other"),
    ),
    "flow_reason": (
        ("work", "务工经商", "work"),
        ("study", "学习", "study"),
        ("study_abroad", "出国（境）学习", "study abroad"),
        ("residence", "居住", "residence"),
        ("other", "其他", "other"),
    ),
    "flow_status": (
        ("pending_report", "待报到", "pending report"),
        ("reported", "已报到", "reported"),
        ("ended", "已结束", "ended"),
    ),
    "end_reason": (
        ("returned", "返回", "returned"),
        ("transferred", "转移组织关系", "membership transferred"),
        ("other", "其他", "other"),
    ),
    "channel": (
        ("phone", "电话", "phone"),
        ("wechat", "微信", "WeChat"),
        ("visit", "走访", "visit"),
        ("letter", "信函", "letter"),
        ("other", "其他", "other"),
    ),
    "meeting_kind": (
        ("branch_congress", "支部党员大会", "branch congress"),
        ("committee", "支部委员会", "branch committee"),
        ("group", "党小组会", "party group"),
        ("party_lesson", "党课", "party lesson"),
        ("theme_day", "主题党日", "theme day"),
        ("life_meeting", "组织生活会", "organizational life meeting"),
        ("appraisal", "民主评议", "democratic appraisal"),
    ),
    "study_kind": (
        ("campaign", "集中学习教育", "study campaign"),
        ("online", "网上学习", "online study"),
        ("lesson", "党课", "lesson"),
        ("self", "自学", "self-study"),
    ),
    "vanguard_kind": (
        ("demonstration_post", "党员示范岗", "demonstration post"),
        ("responsibility_zone", "党员责任区", "responsibility zone"),
        ("pledge", "设岗定责/承诺践诺", "pledge"),
        ("volunteer", "志愿服务", "volunteer service"),
    ),
    "care_kind": (
        ("hardship", "困难帮扶", "hardship"),
        ("employment", "就业帮扶", "employment"),
        ("training", "技能培训", "skills training"),
        ("rights", "权益维护", "rights protection"),
        ("business", "创业扶持", "starting a business"),
        ("condolence", "走访慰问", "condolence visit"),
    ),
    "appraisal_result": (
        ("excellent", "优秀", "excellent"),
        ("qualified", "合格", "qualified"),
        ("basically_qualified", "基本合格", "basically qualified"),
        ("unqualified", "不合格", "unqualified"),
    ),
    "probation_decision": (
        ("converted", "按期转正", "converted"),
        ("extended", "延长预备期", "extended"),
        ("cancelled", "取消预备党员资格", "cancelled"),
    ),
    "transfer_status": (
        ("draft", "草稿", "draft"),
        ("issued", "已开具", "issued"),
        ("received", "已回执", "received"),
        ("returned", "已退回", "returned"),
        ("cancelled", "已作废", "cancelled"),
    ),
    "application_stage": (
        ("applicant", "入党申请人", "applicant"),
        ("activist", "入党积极分子", "activist"),
        ("candidate", "发展对象", "candidate"),
    ),
    "task_reply_status": (("open", "未完成", "open"), ("done", "已完成", "done")),
    "fund_kind": (("allocation", "划拨", "allocation"), ("expense", "支出", "expense")),
    "conflict_status": (("open", "待处理", "open"), ("resolved", "已处理", "resolved")),
    "fund_purpose": (
        ("education", "教育培训", "education"),
        ("activities", "组织活动", "activities"),
        ("condolence", "走访慰问", "condolence"),
    ),
}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    zh: str
    en: str
    required: bool = False
    choices: str | None = None  # key into CHOICES for enum fields
    ref: str | None = None  # record type referenced by ref/refs fields
    past: bool = False  # a date that may not lie in the future
    owner: str = "home"  # home | host | writer | any | server (DESIGN §3.3)
    max_len: int = 200
    sensitive: bool = False  # masked on screen (ID numbers)
    fixed: bool = False  # set when the record is made, never changed (scope anchors)
    # values the host side may set although another side owns the field (a flow's status
    # becomes "reported" when the host records the report-in)
    host_values: tuple[str, ...] = ()
    # the owning side may hand the record over to another organization through this field
    # (a member's home): the write may take the record out of the writer's own reach
    hands_over: bool = False
    # The steps a workflow's state field may take, as (from, to) pairs; "" is "not yet set".
    # A change not listed is refused, on the device when it is typed and on the server.
    steps: tuple[tuple[str, str], ...] = ()

    @property
    def flag(self) -> str:
        """The command-line flag for this field: ``birth_date`` → ``--birth-date``."""
        return "--" + self.name.replace("_", "-")

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def choice_values(self) -> tuple[str, ...]:
        return tuple(c[0] for c in CHOICES[self.choices]) if self.choices else ()


SCOPE_KINDS = ("everyone", "member", "member_record", "org", "task", "reply", "subject")
HOST_VIEWS = ("", "flow", "written", "open")


@dataclass(frozen=True)
class Scope:
    """Which organizations a record belongs to (its anchors); a device holds the records with an
    anchor in its subtree (DESIGN §3.3).

    kind
      everyone       every device holds it (organizations, which the county admin keeps)
      member         a member: its home organization (for a home outside the system, the
                     organization that registered it) and the host of its open flow
      member_record  hangs off a member (``member_id``): the member's home holds it; the host
                     of the member's open flow holds it as ``host`` says
      org            belongs to the organization in its first anchor field; ``people`` fields
                     list members whose home it also reaches (attendance counts at home, M-3.2)
      task           the issuing organization and the targets
      reply          the replying organization and the task's issuer
      subject        whoever holds the record it is about (sync conflicts)
    host (member records)
      ""             the host does not hold it
      "flow"         the record is a flow: its host holds it while it is open
      "written"      the host holds what its own side recorded, while it hosts the member
      "open"         the host holds it while it hosts the member (it has a part to write)
    delete: the side that may delete a record (``home`` or ``writer``).
    """

    kind: str
    anchors: tuple[str, ...] = ()
    host: str = ""
    people: tuple[str, ...] = ()
    delete: str = "writer"

    def __post_init__(self) -> None:
        assert self.kind in SCOPE_KINDS and self.host in HOST_VIEWS, self


@dataclass(frozen=True)
class RecordType:
    name: str
    zh: str
    en: str
    fields: tuple[Field, ...]
    scope: Scope
    # the field that names a record in lists and messages
    title: str = "name"
    by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})

    def __getitem__(self, name: str) -> Field:
        return self.by_name[name]

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


F = Field
# Transfer of membership (M-1.4): a draft is issued (the letter printed) or dropped; an issued
# letter comes back with its receipt, is returned unused, or is cancelled.
TRANSFER_STEPS = (("", "draft"), ("", "issued"), ("draft", "issued"), ("draft", "cancelled"),
                  ("issued", "received"), ("issued", "returned"), ("issued", "cancelled"))
# Applications to join (M-4.2) move forward one stage at a time.
APPLICATION_STEPS = (("", "applicant"), ("", "activist"), ("", "candidate"),
                     ("applicant", "activist"), ("activist", "candidate"))
# How member records reach the host: what its own side recorded, while it hosts the member.
HOSTED = Scope("member_record", ("member_id",), host="written")

TYPES: dict[str, RecordType] = {
    t.name: t
    for t in (
        RecordType("org", "组织", "organization", (
            F("name", "text", "名称", "name", required=True),
            F("kind", "enum", "类别", "kind", required=True, choices="org_kind"),
            F("parent_id", "ref", "上级组织", "parent organization", ref="org"),
            F("division_code", "division_code", "行政区划代码", "division code"),
            F("address", "text", "地址", "address"),
            F("secretary", "text", "书记", "secretary"),
            F("phone", "text", "联系电话", "phone", max_len=30),
            F("can_approve_probationary", "bool", "有审批预备党员权限", "may approve probationary members"),
            F("approved_by_org_id", "ref", "批准组织", "approved by", ref="org"),
            F("approved_on", "date", "批准日期", "approved on", past=True),
        ), Scope("everyone")),
        RecordType("member", "党员", "member", (
            F("name", "name", "姓名", "name", required=True, max_len=50),
            F("gender", "enum", "性别", "gender", choices="gender"),
            F("birth_date", "date", "出生日期", "birth date", past=True),
            F("ethnicity", "text", "民族", "ethnicity", max_len=20),
            F("id_number", "id_number", "身份证号", "ID number", sensitive=True),
            F("phone", "phone", "手机号", "mobile phone"),
            F("education", "enum", "学历", "education", choices="education"),
            F("standing", "enum", "党员类别", "standing", choices="standing"),
            F("joined_on", "date", "入党日期", "joined on", past=True),
            F("probation_ends_on", "date", "预备期满日期", "probation ends on"),
            F("home_org_id", "ref", "所在党组织", "home organization", ref="org",
              hands_over=True),
            F("external_home_org", "text", "所在党组织（系统外）", "home organization (outside)"),
            F("lost_contact_since", "date", "失联日期", "lost contact since", past=True),
            F("archived", "enum", "归档", "archived", choices="archived"),
            F("notes", "longtext", "备注", "notes", max_len=2000),
        ), Scope("member", ("home_org_id",), delete="home")),
        RecordType("flow", "流动登记", "flow", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", fixed=True),
            F("home_org_id", "ref", "流出地党组织", "home organization", ref="org", fixed=True),
            F("host_org_id", "ref", "流入地党组织", "host organization", ref="org"),
            F("external_host", "text", "流入地党组织（系统外）", "host organization (outside)"),
            F("destination_division_code", "division_code", "流入地区划", "destination division code"),
            F("destination_address", "text", "流入地地址", "destination address"),
            F("destination_employer", "text", "工作单位", "employer"),
            F("reason", "enum", "流动原因", "reason", required=True, choices="flow_reason"),
            F("left_on", "date", "外出日期", "left on", required=True, past=True),
            F("expected_until", "date", "预计外出至", "expected until"),
            F("certificate_no", "text", "流动党员活动证号", "certificate number", max_len=40),
            F("home_contact", "text", "流出地联系人", "home contact person", max_len=50),
            F("host_contact", "text", "流入地联系人", "host contact person", max_len=50,
              owner="host"),
            F("reported_on", "date", "报到日期", "reported on", past=True, owner="host"),
            F("status", "enum", "状态", "status", required=True, choices="flow_status",
              host_values=("reported",)),
            F("ended_on", "date", "结束日期", "ended on", past=True),
            F("end_reason", "enum", "结束原因", "end reason", choices="end_reason"),
        ), Scope("member_record", ("member_id", "host_org_id"), host="flow", delete="home"),
            title="member_id"),
        RecordType("contact", "联系记录", "contact", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("flow_id", "ref", "流动登记", "flow", ref="flow", owner="writer", fixed=True),
            F("on", "date", "日期", "date", required=True, past=True, owner="writer"),
            F("by", "text", "联系人", "contacted by", max_len=50, owner="writer"),
            F("channel", "enum", "方式", "channel", required=True, choices="channel",
              owner="writer"),
            F("reached", "bool", "已联系上", "reached", required=True, owner="writer"),
            F("summary", "longtext", "情况", "summary", max_len=2000, owner="writer"),
        ), Scope("member_record", ("member_id", "flow_id"), host="written"), title="on"),
        RecordType("meeting", "组织生活", "meeting", (
            F("org_id", "ref", "组织", "organization", required=True, ref="org", owner="writer",
              fixed=True),
            F("kind", "enum", "类别", "kind", required=True, choices="meeting_kind", owner="writer"),
            F("held_on", "date", "日期", "held on", required=True, past=True, owner="writer"),
            F("topic", "text", "主题", "topic", owner="writer"),
            F("attendee_ids", "refs", "参加人员", "attendees", ref="member", owner="writer"),
            F("absences", "absences", "缺席人员及原因", "absences", owner="writer"),
        ), Scope("org", ("org_id",), people=("attendee_ids", "absences")), title="topic"),
        RecordType("study", "学习记录", "study", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("on", "date", "日期", "date", required=True, past=True, owner="writer"),
            F("kind", "enum", "形式", "kind", required=True, choices="study_kind", owner="writer"),
            F("topic", "text", "内容", "topic", owner="writer"),
            F("hours", "hours", "学时", "hours", owner="writer"),
        ), HOSTED, title="topic"),
        RecordType("vanguard", "先锋作用", "vanguard role", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("kind", "enum", "类别", "kind", required=True, choices="vanguard_kind", owner="writer"),
            F("title", "text", "名称", "title", required=True, owner="writer"),
            F("started_on", "date", "开始日期", "started on", owner="writer"),
            F("ended_on", "date", "结束日期", "ended on", owner="writer"),
            F("hours", "hours", "时长", "hours", owner="writer"),
            F("outcome", "longtext", "成效", "outcome", max_len=2000, owner="writer"),
        ), HOSTED, title="title"),
        RecordType("care", "关怀帮扶", "care", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("on", "date", "日期", "date", required=True, past=True, owner="writer"),
            F("kind", "enum", "类别", "kind", required=True, choices="care_kind", owner="writer"),
            F("description", "longtext", "内容", "description", max_len=2000, owner="writer"),
            F("amount_yuan", "money", "金额（元）", "amount (yuan)", owner="writer"),
            F("by_org_id", "ref", "帮扶组织", "by organization", ref="org", owner="writer"),
            F("fund_source", "text", "资金来源", "fund source", owner="writer"),
        ), HOSTED, title="kind"),
        RecordType("appraisal", "民主评议", "appraisal", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("year", "year", "年度", "year", required=True, owner="writer"),
            F("by_org_id", "ref", "评议组织", "by organization", required=True, ref="org",
              owner="writer"),
            F("result", "enum", "结果", "result", required=True, choices="appraisal_result",
              owner="writer"),
            # set by the member's home side when the appraisal reaches it (M-4.2)
            F("notified_home_on", "date", "通报流出地日期", "home notified on", past=True),
        ), HOSTED, title="year"),
        RecordType("commendation", "表彰", "commendation", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", owner="writer",
              fixed=True),
            F("on", "date", "日期", "date", required=True, past=True, owner="writer"),
            F("title", "text", "称号", "title", required=True, owner="writer"),
            F("by_org_id", "ref", "表彰组织", "by organization", ref="org", owner="writer"),
        ), HOSTED, title="title"),
        RecordType("probation_review", "预备党员转正", "probation review", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", fixed=True),
            F("due_on", "date", "预备期满", "due on", required=True),
            F("meeting_on", "date", "支部大会日期", "meeting on", past=True),
            F("decision", "enum", "决定", "decision", choices="probation_decision",
              steps=tuple(("", c[0]) for c in CHOICES["probation_decision"])),
            F("extended_until", "date", "延长预备期至", "extended until"),
            F("approved_by_org_id", "ref", "审批组织", "approved by", ref="org"),
            F("approved_on", "date", "审批日期", "approved on", past=True),
            F("host_conduct_report", "longtext", "流入地现实表现", "host conduct report",
              max_len=4000, owner="host"),
        ), Scope("member_record", ("member_id",), host="open", delete="home"), title="due_on"),
        RecordType("transfer", "组织关系转接", "transfer", (
            F("member_id", "ref", "党员", "member", required=True, ref="member", fixed=True),
            F("from_org_id", "ref", "转出组织", "from organization", required=True, ref="org"),
            F("to_org_id", "ref", "转入组织", "to organization", ref="org"),
            F("to_org_text", "text", "转入组织（系统外）", "to organization (outside)"),
            F("letter_no", "text", "介绍信编号", "letter number", max_len=40),
            F("dues_paid_until", "month", "党费交至", "dues paid until"),
            F("valid_days", "int", "有效期（天）", "valid days"),
            F("issued_on", "date", "开具日期", "issued on", past=True),
            F("receipt_due_on", "date", "回执期限", "receipt due on"),
            # the issuing (home) side records the receipt slip when it comes back
            F("received_on", "date", "回执日期", "received on", past=True),
            F("status", "enum", "状态", "status", required=True, choices="transfer_status",
              steps=TRANSFER_STEPS),
        ), Scope("member_record", ("member_id",), host="open", delete="home"),
            title="letter_no"),
        RecordType("application", "入党申请", "application", (
            F("org_id", "ref", "组织", "organization", required=True, ref="org", owner="writer",
              fixed=True),
            F("person_name", "name", "姓名", "name", required=True, max_len=50, owner="writer"),
            F("phone", "phone", "手机号", "mobile phone", owner="writer"),
            F("received_on", "date", "收到日期", "received on", required=True, past=True,
              owner="writer"),
            F("stage", "enum", "阶段", "stage", required=True, choices="application_stage",
              owner="writer", steps=APPLICATION_STEPS),
            F("notes", "longtext", "备注", "notes", max_len=2000, owner="writer"),
        ), Scope("org", ("org_id",)), title="person_name"),
        RecordType("task", "工作调度", "task", (
            F("issued_by_org_id", "ref", "下发组织", "issued by", required=True, ref="org",
              owner="writer", fixed=True),
            F("target_org_ids", "refs", "接收组织", "sent to", required=True, ref="org",
              owner="writer"),
            F("title", "text", "标题", "title", required=True, owner="writer"),
            F("body", "longtext", "内容", "body", max_len=8000, owner="writer"),
            F("due_on", "date", "完成期限", "due on", owner="writer"),
        ), Scope("task", ("issued_by_org_id", "target_org_ids")), title="title"),
        RecordType("task_reply", "调度回复", "task reply", (
            F("task_id", "ref", "调度任务", "task", required=True, ref="task", owner="writer",
              fixed=True),
            F("org_id", "ref", "回复组织", "organization", required=True, ref="org", owner="writer",
              fixed=True),
            F("status", "enum", "状态", "status", required=True, choices="task_reply_status",
              owner="writer"),
            F("note", "longtext", "说明", "note", max_len=4000, owner="writer"),
            F("done_on", "date", "完成日期", "done on", past=True, owner="writer"),
        ), Scope("reply", ("org_id", "task_id")), title="status"),
        RecordType("fund", "经费", "fund", (
            F("org_id", "ref", "组织", "organization", required=True, ref="org", owner="writer",
              fixed=True),
            F("on", "date", "日期", "date", required=True, past=True, owner="writer"),
            F("kind", "enum", "类别", "kind", required=True, choices="fund_kind", owner="writer"),
            F("purpose", "enum", "用途", "purpose", required=True, choices="fund_purpose",
              owner="writer"),
            F("amount_yuan", "money", "金额（元）", "amount (yuan)", required=True, owner="writer"),
            F("note", "text", "说明", "note", owner="writer"),
        ), Scope("org", ("org_id",)), title="purpose"),
        # Made by the county server when two devices changed one field concurrently: both
        # values are kept here until a person on either side picks one (DESIGN §3.2).
        RecordType("conflict", "同步冲突", "sync conflict", (
            F("subject_id", "text", "记录编号", "record", required=True, owner="server",
              fixed=True),
            F("subject_type", "text", "记录类型", "record type", required=True, owner="server",
              fixed=True),
            F("field", "text", "字段", "field", required=True, owner="server", fixed=True),
            F("values", "json", "各方取值", "values", required=True, owner="server"),
            F("status", "enum", "状态", "status", required=True, choices="conflict_status",
              owner="any"),
            F("resolved_by", "text", "处理人", "resolved by", owner="any"),
        ), Scope("subject", ("subject_id",)), title="field"),
    )
}

# Fields every record carries besides its type's own (DESIGN §2.2).
SYSTEM_FIELDS = ("id", "type", "created_at", "updated_at", "deleted")


def record_type(name: str) -> RecordType:
    return TYPES[name]


def choice_label(choices: str, value: str, lang: str) -> str:
    for v, zh, en in CHOICES[choices]:
        if v == value:
            return zh if lang == "zh" else en
    return value
