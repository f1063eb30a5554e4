"""Forms for every record type, generated from the schema (DESIGN §4).

A form is a :class:`FormSpec`: the rows it shows (fields of the schema, in the order the action
wants), what they start with, and the store function that does the action. The form never
writes a field itself: it hands what was typed to ``store.register`` (the named actions) or to
``store.put`` (any other record type), and shows what the store refuses under the field it names.

Which fields a form shows: the type's fields minus those only the county server writes, minus
those fixed once the record exists (when editing), minus those the action sets itself (a flow's
member and status); required ones first, except where a named action has its own short order.

Drafts: what is typed and not yet saved is kept in the store's encrypted metadata
(``meta["drafts"]``: written to the journal, never sent by sync), so a closed window loses
nothing. :func:`drafts` lists them, :func:`open_draft` reopens one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import LiudongError, NotFound
from store.schema import TYPES, Field
from tui import workflow_forms
from tui.output import t

if TYPE_CHECKING:
    from store import Store

# Palette titles (ctrl+p): every form that can be opened from anywhere.
ACTIONS: dict[str, tuple[str, str]] = {
    "add_member": ("新增党员", "Add a member"),
    "edit_member": ("编辑党员信息", "Edit a member"),
    "flow_out": ("登记流出", "Register an outflow"),
    "flow_in": ("登记流入", "Register an inflow"),
    "report_in": ("记录报到", "Record reporting in"),
    "end_flow": ("结束流动", "End a flow"),
    "log_contact": ("记录联系", "Log a contact"),
    "pick_record": ("为党员添加记录", "Add a record about a member"),
    "new_record": ("新增记录（任选类型）", "New record (any type)"),
}
# Titles of the forms the palette does not list (they need a record to start from).
TITLES: dict[str, tuple[str, str]] = {**ACTIONS, "edit_record": ("编辑记录", "Edit a record"),
                                      **workflow_forms.TITLES}

# Record types a person adds about a member, in the order the picker lists them; each is a
# named action's type or a plain record.
MEMBER_RECORDS = ("contact", "flow", "study", "vanguard", "care", "appraisal", "commendation",
                  "probation_review", "transfer")
# Types a form never makes: organizations are kept by the county; conflicts by the server.
NOT_MADE_HERE = ("org", "conflict")
# Kinds no form row edits: absences are ticked on the meetings screen; json is the server's.
SKIPPED_KINDS = ("json", "absences")

# The named actions' short field lists, in the order a person fills them in.
ADD_MEMBER = ("name", "id_number", "phone", "gender", "birth_date", "ethnicity", "education",
              "standing", "joined_on", "probation_ends_on", "home_org_id", "external_home_org",
              "notes")
FLOW_OUT = ("left_on", "reason", "host_org_id", "external_host", "destination_address",
            "destination_employer", "destination_division_code", "expected_until",
            "home_contact", "certificate_no")
FLOW_IN_MEMBER = ("name", "id_number", "phone", "external_home_org")
FLOW_IN_FLOW = ("left_on", "reason", "reported_on", "host_contact", "destination_address",
                "destination_employer", "certificate_no", "expected_until")
LOG_CONTACT = ("on", "channel", "reached", "summary", "by")

# What each form is about: the keys of its context (and of its draft).
CTX_KEYS: dict[str, tuple[str, ...]] = {
    "add_member": (), "edit_member": ("member_id",), "flow_out": ("member_id",),
    "flow_in": ("member_id",), "report_in": ("flow_id",), "end_flow": ("flow_id",),
    "log_contact": ("member_id",), "new_record": ("type_name", "member_id"),
    "edit_record": ("rec_id",), **{a: ("rec_id",) for a in workflow_forms.TITLES},
    "transfer_draft": ("member_id",),
}

# The row that picks an existing member in the inflow form (not a field of any record).
EXISTING = Field("existing", "ref", "本机已有党员", "member already here", ref="member")


@dataclass(frozen=True)
class Slot:
    """One row of a form: a schema field, under a key unique in the form."""

    key: str
    type_name: str
    field: Field
    required: bool
    keep_if_blank: bool = False
    """Left blank, the field keeps its value (an ID number is never shown to be edited)."""
    placeholder: str = ""
    member_id: str | None = None
    """For references to a member's records (a contact's flow): only that member's."""
    group: str = ""
    """Rows of a group are switched off while the row ``existing`` holds a member."""
    outside_only: bool = False
    """A member picker that offers only members whose home is not this organization's."""

    @property
    def label(self) -> str:
        return t(self.field.zh, self.field.en)


@dataclass
class FormSpec:
    """A form as :class:`tui.screens.form.FormScreen` shows it."""

    action: str
    ctx: dict[str, str]
    title_zh: str
    title_en: str
    subject: str
    """Whom or what the form is about (a member's name), for the title and the confirmation."""
    slots: list[Slot]
    save: Callable[[Store, dict[str, Any]], str]
    """Does the action with the values (slot key → value); returns the subject as saved."""
    initial: dict[str, Any] = field(default_factory=dict)
    editing: bool = False
    notes: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    """A field an issue names → the slot it is shown under (fields the form shows elsewhere)."""

    @property
    def title(self) -> str:
        head = t(self.title_zh, self.title_en)
        return f"{head} · {self.subject}" if self.subject else head

    @property
    def key(self) -> str:
        return draft_key(self.action, self.ctx)

    def confirmation(self, subject: str) -> str:
        subject = subject or self.subject
        return t(f"已保存：{subject} {self.title_zh}".rstrip(),
                 f"Saved: {self.title_en}" + (f" — {subject}" if subject else ""))


# -- which fields --------------------------------------------------------------------------------
def form_fields(type_name: str, *, editing: bool, set_by_action: tuple[str, ...] = ()) -> list[Field]:
    """The fields a generic form of ``type_name`` shows, required ones first."""
    out = [f for f in TYPES[type_name].fields
           if f.owner != "server" and f.kind not in SKIPPED_KINDS
           and f.name not in set_by_action and not (editing and f.fixed)]
    return sorted(out, key=lambda f: not f.required)  # stable: schema order within each


def skipped_note(type_name: str) -> list[str]:
    return [t(f"「{f.zh}」不在此表单中填写（在会议界面勾选）", f"{f.en} is not edited here "
              "(tick it on the meetings screen)")
            for f in TYPES[type_name].fields if f.kind == "absences"]


def _slots(type_name: str, names: tuple[str, ...] | list[Field], *, prefix: str = "",
           required: tuple[str, ...] = (), group: str = "", member_id: str | None = None,
           editing: bool = False) -> list[Slot]:
    rtype = TYPES[type_name]
    out = []
    for item in names:
        f = item if isinstance(item, Field) else rtype[item]
        keep = editing and f.sensitive
        out.append(Slot(prefix + f.name, type_name, f, f.required or f.name in required,
                        keep_if_blank=keep, group=group, member_id=member_id))
    return out


# -- the context -------------------------------------------------------------------------------
def _doc(store: Store, rec_id: str | None, type_name: str) -> dict[str, Any]:
    doc = store.get(rec_id) if rec_id else None
    if doc is None or (type_name and doc["type"] != type_name):
        rtype = TYPES[type_name] if type_name else None
        raise NotFound(rtype.zh if rtype else "记录", rtype.en if rtype else "record",
                       str(rec_id))
    return doc


def _today(app: Any) -> str:
    return str(app.today_date().isoformat())


def _own_org(store: Store) -> str | None:
    own = store.meta.get("own_org_id")
    return own if own and store.get(own) is not None else None


def _stored(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The values of one record out of a form's values (keys ``prefix + field``)."""
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)
            and "." not in k[len(prefix):]}


def _defaults(store: Store, app: Any, slots: list[Slot]) -> dict[str, Any]:
    """What a new record's rows start with: today for the day it happened, this organization
    for the organization it belongs to, the first step of a status."""
    own = _own_org(store)
    out: dict[str, Any] = {}
    for s in slots:
        f = s.field
        if f.kind == "date" and f.required and f.past:
            out[s.key] = _today(app)
        elif f.kind == "ref" and f.ref == "org" and f.required and own:
            out[s.key] = own
        elif f.kind == "enum" and f.required and f.name in ("status", "stage") and f.choices:
            out[s.key] = f.choice_values()[0]
    return out


def _from_doc(slots: list[Slot], doc: dict[str, Any]) -> dict[str, Any]:
    return {s.key: doc[s.field.name] for s in slots
            if doc.get(s.field.name) is not None and not s.keep_if_blank}


# -- the forms -----------------------------------------------------------------------------------
def build(app: Any, action: str, ctx: dict[str, str]) -> FormSpec:
    """The form of ``action`` in context ``ctx``; NotFound if what it is about is gone."""
    store: Store = app.store
    today = app.today_date()
    zh, en = TITLES[action]

    if action in workflow_forms.TITLES:
        return workflow_forms.build(app, action, ctx)

    if action == "add_member":
        slots = _slots("member", ADD_MEMBER)
        own = _own_org(store)
        initial = {"standing": "full", **({"home_org_id": own} if own else {})}

        def save_add(s: Store, values: dict[str, Any]) -> str:
            from store import register

            member_id = register.add_member(s, values)
            return str((s.get(member_id) or {}).get("name", ""))

        return FormSpec(action, ctx, zh, en, "", slots, save_add, initial)

    if action == "edit_member":
        member = _doc(store, ctx.get("member_id"), "member")
        slots = _slots("member", form_fields("member", editing=True), editing=True)
        slots = [replace_placeholder(s, member) for s in slots]

        def save_edit(s: Store, values: dict[str, Any]) -> str:
            from store import register

            register.edit_member(s, member["id"], values)
            return str((s.get(member["id"]) or member).get("name", ""))

        return FormSpec(action, ctx, zh, en, member["name"], slots, save_edit,
                        _from_doc(slots, member), editing=True)

    if action == "flow_out":
        member = _doc(store, ctx.get("member_id"), "member")
        slots = _slots("flow", FLOW_OUT)

        def save_out(s: Store, values: dict[str, Any]) -> str:
            from store import register

            register.flow_out(s, member["id"], values)
            return str(member["name"])

        return FormSpec(action, ctx, zh, en, member["name"], slots, save_out,
                        {"left_on": _today(app)})

    if action == "flow_in":
        existing = ctx.get("member_id")
        member = _doc(store, existing, "member") if existing else None
        slots = [] if member else [Slot("existing", "member", EXISTING, False, outside_only=True,
                                        placeholder=t(
            "输入姓名或拼音找本机已有的党员；新来的党员留空，按回车",
            "type a name to find a member already here; for a newcomer leave blank"))]
        if member is None:
            slots += _slots("member", FLOW_IN_MEMBER, prefix="member.", group="member",
                            required=("name", "external_home_org"))
        slots += _slots("flow", FLOW_IN_FLOW, prefix="flow.")

        def save_in(s: Store, values: dict[str, Any]) -> str:
            from store import register

            who: dict[str, Any] | str = values.get("existing") or (
                member["id"] if member else _stored(values, "member."))
            member_id, _ = register.flow_in(s, who, _stored(values, "flow."))
            return str((s.get(member_id) or {}).get("name", ""))

        return FormSpec(action, ctx, zh, en, member["name"] if member else "", slots, save_in,
                        {"flow.reported_on": _today(app)},
                        aliases={"home_org_id": "member.external_home_org", "name": "member.name",
                                 "id_number": "member.id_number", "phone": "member.phone",
                                 "external_home_org": "member.external_home_org",
                                 "member_id": "existing"})

    if action in ("report_in", "end_flow"):
        flow = _doc(store, ctx.get("flow_id"), "flow")
        who = store.get(flow["member_id"]) or {}
        names = ("reported_on",) if action == "report_in" else ("ended_on", "end_reason")
        slots = _slots("flow", names, required=names)

        def save_flow(s: Store, values: dict[str, Any]) -> str:
            from store import register

            if action == "report_in":
                register.report_in(s, flow["id"], values.get("reported_on"))  # type: ignore[arg-type]
            else:
                register.end_flow(s, flow["id"], values.get("ended_on"),  # type: ignore[arg-type]
                                  values.get("end_reason"), today)  # type: ignore[arg-type]
            return str(who.get("name", ""))

        return FormSpec(action, ctx, zh, en, str(who.get("name", "")), slots, save_flow,
                        {names[0]: _today(app)})

    if action == "log_contact":
        member = _doc(store, ctx.get("member_id"), "member")
        slots = _slots("contact", LOG_CONTACT)

        def save_contact(s: Store, values: dict[str, Any]) -> str:
            from store import register

            register.log_contact(s, member["id"], values)
            return str(member["name"])

        return FormSpec(action, ctx, zh, en, member["name"], slots, save_contact,
                        {"on": _today(app)})

    if action == "new_record":
        type_name = ctx["type_name"]
        rtype = TYPES[type_name]
        member = _doc(store, ctx["member_id"], "member") if ctx.get("member_id") else None
        set_here = ("member_id",) if member else ()
        slots = _slots(type_name, form_fields(type_name, editing=False, set_by_action=set_here),
                       member_id=member["id"] if member else None)

        given = {k: v for k, v in ctx.items() if k in rtype.by_name and k != "member_id"}

        def save_new(s: Store, values: dict[str, Any]) -> str:
            s.put(type_name, {**given, **values,
                              **({"member_id": member["id"]} if member else {})})
            return str(member["name"]) if member else ""

        return FormSpec(action, ctx, f"新增{rtype.zh}", f"New {rtype.en}",
                        member["name"] if member else "", slots, save_new,
                        {**_defaults(store, app, slots), **given},
                        notes=skipped_note(type_name))

    if action == "edit_record":
        doc = _doc(store, ctx.get("rec_id"), "")
        type_name = doc["type"]
        rtype = TYPES[type_name]
        member = store.get(doc["member_id"]) if doc.get("member_id") else None
        slots = _slots(type_name, form_fields(type_name, editing=True), editing=True,
                       member_id=member["id"] if member else None)

        def save_record(s: Store, values: dict[str, Any]) -> str:
            s.put(type_name, values, doc["id"])
            return str(member["name"]) if member else ""

        return FormSpec(action, ctx, f"编辑{rtype.zh}", f"Edit {rtype.en}",
                        str(member["name"]) if member else "", slots, save_record,
                        _from_doc(slots, doc), editing=True, notes=skipped_note(type_name))

    raise KeyError(action)


def replace_placeholder(slot: Slot, doc: dict[str, Any]) -> Slot:
    """An ID number is never shown on screen in full: the edit form says it is there."""
    if not slot.keep_if_blank or not doc.get(slot.field.name):
        return slot
    from dataclasses import replace

    from tui.output import mask_id

    shown = mask_id(str(doc[slot.field.name]))
    return replace(slot, placeholder=t(f"已登记 {shown}（留空不改）",
                                       f"on record: {shown} (blank keeps it)"))


# -- opening a form ------------------------------------------------------------------------------
def _current_member(app: Any) -> str | None:
    """The member the screen under the form is about: a member's page, or the row under the
    cursor of the members list."""
    screen = app.screen
    member_id = getattr(screen, "member_id", None)
    if member_id is None:
        from textual.css.query import NoMatches

        from tui.widgets.record_list import RecordList

        try:
            member_id = screen.query_one(RecordList).current_id
        except NoMatches:  # a screen without a list of records
            member_id = None
    doc = app.store.get(member_id) if member_id else None
    if doc is not None and doc["type"] != "member":  # a flow in the flows list: its member
        doc = app.store.get(doc.get("member_id") or "")
    return doc["id"] if doc is not None and doc["type"] == "member" else None


def open_form(app: Any, action: str, **ctx: Any) -> None:
    """Push the form of ``action``. ``ctx`` names what it is about: ``member_id``, ``flow_id``,
    ``rec_id``, ``type_name``. What is missing is taken from the screen below (a member's page)
    or asked for (a member picker, a record-type picker). A draft of the same form is restored."""
    store = app.store
    if store is None:
        return
    if action not in TITLES:
        raise KeyError(action)
    ctx = {k: str(v) for k, v in ctx.items() if v is not None}
    from tui.screens.form import FormScreen, MemberPickScreen, TypePickScreen

    def then(name: str, **more: Any) -> Callable[[Any], None]:
        def go(value: Any) -> None:
            if value:
                open_form(app, action, **{**ctx, name: value, **more})
        return go

    if action == "new_record" and ctx.get("type_name") in ("member", "flow", "contact"):
        action = {"member": "add_member", "flow": "flow_out", "contact": "log_contact"}[
            ctx.pop("type_name")]
    if action == "edit_record":
        doc = store.get(ctx.get("rec_id", ""))
        if doc is None:
            app.notify(t("请先选中一条记录", "Select a record first"), severity="warning")
            return
        if doc["type"] == "member":
            action, ctx = "edit_member", {"member_id": doc["id"]}
    needs_member = action in ("edit_member", "flow_out", "log_contact", "pick_record") or (
        action in ("report_in", "end_flow") and "flow_id" not in ctx)
    if needs_member and "member_id" not in ctx:
        found = _current_member(app)
        if found is None:
            app.push_screen(MemberPickScreen(t(TITLES[action][0] + "：选择党员",
                                               TITLES[action][1] + ": pick a member")),
                            then("member_id"))
            return
        ctx["member_id"] = found
    if action in ("report_in", "end_flow") and "flow_id" not in ctx:
        from store.register import open_flow

        flow = open_flow(store, ctx["member_id"])
        if flow is None:
            app.notify(t("该党员没有未结束的流动登记", "This member has no open flow"),
                       severity="warning")
            return
        ctx = {"flow_id": flow["id"]}
    if action == "pick_record":
        choices = [(name, t(TYPES[name].zh, TYPES[name].en)) for name in MEMBER_RECORDS]
        app.push_screen(TypePickScreen(t("添加哪一类记录？", "Add which kind of record?"),
                                       choices),
                        lambda picked: picked and open_form(
                            app, "new_record", type_name=picked, member_id=ctx["member_id"]))
        return
    if action == "new_record" and "type_name" not in ctx:
        choices = [(name, t(rt.zh, rt.en)) for name, rt in TYPES.items()
                   if name not in NOT_MADE_HERE]
        app.push_screen(TypePickScreen(t("新增哪一类记录？", "New record of which kind?"),
                                       choices), then("type_name"))
        return
    if action == "new_record":
        rtype = TYPES[ctx["type_name"]]
        if "member_id" not in rtype.by_name:
            ctx.pop("member_id", None)
        elif "member_id" not in ctx:
            found = _current_member(app)
            if found is not None:
                ctx["member_id"] = found
    # a new record may come with some of its fields given (a task's reply: its task and org)
    given = TYPES[ctx["type_name"]].by_name if action == "new_record" else {}
    ctx = {k: v for k, v in ctx.items() if k in CTX_KEYS[action] or k in given}
    try:
        spec = build(app, action, ctx)
    except LiudongError as exc:
        app.notify(exc.message(), severity="error")
        return
    draft = (store.meta.get("drafts") or {}).get(spec.key)
    app.push_screen(FormScreen(spec, draft.get("values") if isinstance(draft, dict) else None))


# -- drafts --------------------------------------------------------------------------------------
def draft_key(action: str, ctx: dict[str, str]) -> str:
    """One draft per form: the action and what it is about (``flow_out|member_id=01J…``)."""
    return "|".join([action, *(f"{k}={v}" for k, v in sorted(ctx.items()))])


def drafts(store: Store) -> list[dict[str, Any]]:
    """The forms left unsaved, latest first: ``key``, ``action``, ``ctx``, ``title`` (in the
    user's language) and ``saved_at``. For the worklist and the start of the app."""
    found = store.meta.get("drafts") or {}
    out = [{"key": key, "action": d.get("action"), "ctx": dict(d.get("ctx") or {}),
            "title": t(d.get("title_zh", ""), d.get("title_en", "")),
            "saved_at": d.get("saved_at", "")}
           for key, d in found.items() if isinstance(d, dict)]
    return sorted(out, key=lambda d: d["saved_at"], reverse=True)


def open_draft(app: Any, key: str) -> None:
    """Reopen the form a draft was typed into, with what was typed."""
    found = (app.store.meta.get("drafts") or {}).get(key)
    if not isinstance(found, dict) or found.get("action") not in TITLES:
        app.notify(t("没有这份草稿", "No such draft"), severity="warning")
        return
    try:
        build(app, found["action"], dict(found.get("ctx") or {}))
    except LiudongError:
        drop_draft(app.store, key)
        app.notify(t("草稿对应的记录已不在本机，草稿已删除",
                     "The record this draft was about is gone; the draft was removed"),
                   severity="warning")
        return
    open_form(app, found["action"], **dict(found.get("ctx") or {}))


def save_draft(store: Store, spec: FormSpec, values: dict[str, Any]) -> None:
    """Keep what was typed into ``spec``'s form (encrypted, in the store's metadata)."""
    current = dict(store.meta.get("drafts") or {})
    # a new record has no subject yet: what was typed as its name or title names the draft
    typed = next((v for k in ("name", "person_name", "title", "topic")
                  if isinstance(v := values.get(k), str) and v.strip()), "")
    subject = spec.subject or typed
    current[spec.key] = {
        "action": spec.action, "ctx": dict(spec.ctx), "values": values,
        "title_zh": f"{spec.title_zh} · {subject}" if subject else spec.title_zh,
        "title_en": f"{spec.title_en} · {subject}" if subject else spec.title_en,
        "saved_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    store.set_meta(drafts=current)


def drop_draft(store: Store, key: str) -> None:
    current = dict(store.meta.get("drafts") or {})
    if key in current:
        del current[key]
        store.set_meta(drafts=current or None)
