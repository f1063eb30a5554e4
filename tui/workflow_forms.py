"""The workflows' steps as forms (``store/workflows.py`` runs them): a transfer's letter issued,
its receipt, its return or cancellation, the letter printed (M-1.4); a probation decision and the
host's conduct report (M-2.2c). Each form shows only what its step needs; the store fills in the
rest and refuses a step the record's state does not allow.

The member page opens them with ``t`` and ``p`` (:func:`transfer_menu`, :func:`probation_menu`):
with nothing under way the key starts one (a new transfer, a new review), otherwise it offers
the steps the schema allows from the current state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.schema import TRANSFER_STEPS, TYPES, Field
from tui.output import t

if TYPE_CHECKING:
    from store import Store
    from tui.forms import FormSpec

TITLES: dict[str, tuple[str, str]] = {
    "transfer_draft": ("起草组织关系转接", "Draft a transfer"),
    "transfer_issued": ("开具介绍信", "Issue the letter"),
    "transfer_received": ("记录回执（组织关系转出）", "Record the receipt (membership moves)"),
    "transfer_returned": ("介绍信退回", "The letter came back"),
    "transfer_cancelled": ("作废转接", "Cancel the transfer"),
    "transfer_letter": ("打印介绍信（PDF）", "Print the letter (PDF)"),
    "probation_decide": ("转正决定", "Decision on probation"),
    "probation_report": ("流入地现实表现", "The host's conduct report"),
}
FIELDS: dict[str, tuple[str, ...]] = {
    "transfer_draft": ("to_org_id", "to_org_text", "dues_paid_until", "valid_days"),
    "transfer_issued": ("dues_paid_until", "valid_days", "letter_no", "issued_on"),
    "transfer_received": ("received_on",),
    "transfer_returned": (),
    "transfer_cancelled": (),
    "probation_decide": ("decision", "meeting_on", "approved_by_org_id", "approved_on",
                         "extended_until"),
    "probation_report": ("host_conduct_report",),
}
REQUIRED = {"transfer_issued": ("dues_paid_until",), "transfer_received": ("received_on",),
            "probation_decide": ("decision", "meeting_on", "approved_by_org_id", "approved_on"),
            "probation_report": ("host_conduct_report",)}
# The letter's file: not a field of any record.
OUT = Field("out", "text", "保存为（PDF 文件）", "save as (PDF file)", max_len=500)


def build(app: Any, action: str, ctx: dict[str, str]) -> FormSpec:
    from store import workflows
    from tui.forms import FormSpec, Slot, _doc, _slots, _today

    store: Store = app.store
    type_name = "transfer" if action.startswith("transfer") else "probation_review"
    if action == "transfer_draft":
        member = _doc(store, ctx.get("member_id"), "member")
        slots = _slots(type_name, FIELDS[action])

        def save_draft(s: Store, values: dict[str, Any]) -> str:
            workflows.draft_transfer(s, member["id"], values)
            return str(member["name"])

        return FormSpec(action, ctx, *TITLES[action], str(member["name"]), slots, save_draft,
                        {"valid_days": workflows.VALID_DAYS}, notes=[t(
                            "转入组织在系统内则选择，系统外则填写名称；按 t 再开具介绍信。",
                            "Pick the receiving organization, or type its name when it is outside "
                            "the system; press t again to issue the letter.")])
    doc = _doc(store, ctx.get("rec_id"), type_name)
    member = store.get(doc["member_id"]) or {}
    zh, en = TITLES[action]
    subject = str(member.get("name", ""))

    if action == "transfer_letter":
        from tui.letter import letter_data, write_letter

        def save_letter(s: Store, values: dict[str, Any]) -> str:
            out = Path(str(values.get("out") or "")).expanduser()
            write_letter(letter_data(s, doc["id"]), out)
            app.notify(t(f"介绍信已写出：{out}", f"Letter written: {out}"))
            return subject

        name = f"介绍信-{doc.get('letter_no') or doc['id'][-8:]}-{subject}.pdf"
        return FormSpec(action, ctx, zh, en, subject, [Slot("out", type_name, OUT, True)],
                        save_letter, {"out": name})

    names = FIELDS[action]
    slots = _slots(type_name, names, required=REQUIRED.get(action, ()))

    def save_step(s: Store, values: dict[str, Any]) -> str:
        if action.startswith("transfer_"):
            step = action.removeprefix("transfer_")
            s.put("transfer", {**values, "status": step}, doc["id"])
        elif action == "probation_decide":
            workflows.decide_probation(s, doc["id"], values)
        else:
            s.put("probation_review", values, doc["id"])
        return subject

    initial: dict[str, Any] = {k: doc[k] for k in names if doc.get(k) is not None}
    if action == "transfer_issued":
        initial = {"valid_days": workflows.VALID_DAYS, "issued_on": _today(app), **initial}
    elif action == "transfer_received":
        initial["received_on"] = _today(app)
    notes = []
    if action == "transfer_received":
        to = (store.get(doc["to_org_id"]) or {}).get("name") if doc.get("to_org_id") else \
            doc.get("to_org_text")
        notes.append(t(f"保存后，{subject} 的流动登记结束，组织关系转至 {to}。",
                       f"Saving ends {subject}'s flow and moves the membership to {to}."))
    elif action == "transfer_issued":
        notes.append(t("介绍信编号留空则自动编号；开具后介绍信内容不能再改。",
                       "A blank letter number is numbered for you; once issued, the letter "
                       "cannot change."))
    elif not slots:
        notes.append(t("按 Ctrl+S 确认。", "Press Ctrl+S to confirm."))
    # not an edit: every value shown goes to the step (a date left as offered included)
    return FormSpec(action, ctx, zh, en, subject, slots, save_step, initial, notes=notes)


def transfer_menu(app: Any, member_id: str) -> None:
    """``t`` on a member page: a new transfer, or the next steps of the one under way."""
    from store.workflows import open_transfers
    from tui.forms import open_form
    from tui.screens.form import TypePickScreen

    under_way = open_transfers(app.store, member_id)
    if not under_way:
        open_form(app, "transfer_draft", member_id=member_id)
        return
    doc = under_way[0]
    steps = [f"transfer_{new}" for old, new in TRANSFER_STEPS if old == doc["status"]]
    if doc["status"] == "issued":
        steps.append("transfer_letter")
    choices = [(s, t(*TITLES[s])) for s in steps]
    status = TYPES["transfer"]["status"]
    from store.errors import current_lang
    from store.schema import choice_label

    title = t(f"组织关系转接（{choice_label(status.choices or '', doc['status'], 'zh')}）",
              f"Transfer ({choice_label(status.choices or '', doc['status'], current_lang())})")
    app.push_screen(TypePickScreen(title, choices),
                    lambda picked: picked and open_form(app, picked, rec_id=doc["id"]))


def probation_menu(app: Any, member_id: str) -> None:
    """``p`` on a member page: a new review, or its decision and the host's report."""
    from tui.forms import open_form
    from tui.screens.form import TypePickScreen

    member = app.store.get(member_id) or {}
    pending = [r for r in app.store.state.records_of(member_id, "probation_review")
               if not r.get("decision")]
    if not pending:
        if member.get("standing") != "probationary":
            app.notify(t("该党员不是预备党员", "This member is not probationary"),
                       severity="warning")
            return
        open_form(app, "new_record", type_name="probation_review", member_id=member_id)
        return
    choices = [(s, t(*TITLES[s])) for s in ("probation_decide", "probation_report")]
    app.push_screen(TypePickScreen(t("转正审查", "Probation review"), choices),
                    lambda picked: picked and open_form(app, picked, rec_id=pending[0]["id"]))
