"""A form over the whole screen (80×24 is enough): a title, one row per field (label, input,
and an error line under it that shows only when there is something to say), Save and Cancel.

What a form shows and which store function saves it is decided in ``tui/forms.py``; this screen
only collects what is typed, checks each field as it is left (``store.validate.coerce``), hands
the lot to the store on ``ctrl+s`` and shows under each field what the store refused. Nothing is
written unless the store accepts the whole action.

Keys: Enter and Tab move to the next field (from the last one to Save), Shift+Tab back,
``ctrl+s`` saves from anywhere, Esc cancels (asking first when something was typed).
Unsaved changes are kept as a draft in the encrypted store about a second after the last key,
and when the form goes away unsaved (the window closed, the app quit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from store.errors import Forbidden, Issue, LiudongError, ValidationError, current_lang
from store.validate import coerce, issue
from tui.output import t
from tui.widgets.fields import (
    DateField,
    FieldDone,
    FieldEdited,
    FieldWidget,
    PickField,
    TextField,
    field_widget,
    member_finder,
    member_label,
    owner_field,
)

if TYPE_CHECKING:
    from tui.forms import FormSpec, Slot

DRAFT_DELAY = 1.0
"""Seconds after the last change before the draft is written to the store."""


def _say(issue: Issue) -> str:
    return issue.zh if current_lang() == "zh" else issue.en


class FormScreen(Screen[None]):
    """One form (a :class:`tui.forms.FormSpec`), optionally with a draft's values restored."""

    DEFAULT_CSS = """
    FormScreen { layout: vertical; }
    FormScreen #form-title { height: 1; background: $panel; text-style: bold; padding: 0 1; }
    FormScreen #form-summary { display: none; height: auto; color: $error; padding: 0 1;
                               background: $error 10%; }
    FormScreen #form-summary.-shown { display: block; }
    FormScreen #form-fields { height: 1fr; padding: 0 1; }
    FormScreen .field-row { height: auto; }
    FormScreen .field-label { height: 1; color: $text-muted; }
    FormScreen .field-row:focus-within > .field-label { color: $accent; text-style: bold; }
    FormScreen .field-row.-off { display: none; }
    FormScreen .field-row > Input, FormScreen .field-row > Select { width: 1fr; }
    FormScreen .field-row Input { background: $boost; }
    FormScreen .field-row Input.-textual-compact { padding: 0 1; }
    FormScreen .field-row Input:focus { background: $primary 25%; }
    FormScreen .field-row Select > SelectCurrent { background: $boost; padding: 0 1; }
    FormScreen .field-row Select:focus > SelectCurrent { background: $primary 25%; }
    FormScreen .field-row Input.-invalid { background: $error 20%; }
    FormScreen .field-error { display: none; height: auto; color: $error; }
    FormScreen .field-error.-shown { display: block; }
    FormScreen #form-buttons { height: 1; margin-top: 1; }
    FormScreen #form-buttons Button { margin-right: 2; }
    FormScreen .form-note { color: $text-muted; }
    FormScreen #form-keys { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", t("保存", "Save"), priority=True, id="form.save"),
        Binding("escape", "cancel", t("取消", "Cancel"), id="form.cancel"),
    ]
    AUTO_FOCUS = None

    def __init__(self, spec: FormSpec, draft: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.draft = dict(draft or {})
        self.slots: dict[str, Slot] = {s.key: s for s in spec.slots}
        self.label_width = max([cell_len(s.label) for s in spec.slots] + [4]) + 3
        self._baseline: dict[str, Any] = {}
        self._last_draft: dict[str, Any] | None = None
        self._draft_timer: Timer | None = None
        self._finished = False
        self._saving = False
        # Kept here, not queried: a form that goes away unsaved reads them after unmounting.
        self._widgets: dict[str, FieldWidget] = {}

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(Text(self.spec.title), id="form-title")
        yield Static("", id="form-summary")
        store = self.app.store  # type: ignore[attr-defined]
        with VerticalScroll(id="form-fields", can_focus=False):
            for slot in self.spec.slots:
                with Horizontal(classes="field-row", id="row-" + self._dom(slot.key)):
                    label = Static(self._label(slot), classes="field-label")
                    label.styles.width = self.label_width
                    yield label
                    widget = field_widget(slot, store)
                    self._widgets[slot.key] = widget  # type: ignore[assignment]
                    yield widget
                error = Static("", classes="field-error", id="err-" + self._dom(slot.key))
                error.styles.padding = (0, 0, 0, self.label_width + 1)
                yield error
            with Horizontal(id="form-buttons"):
                yield Button(t("保存 Ctrl+S", "Save Ctrl+S"), id="form-save", variant="primary",
                             compact=True)
                yield Button(t("取消 Esc", "Cancel Esc"), id="form-cancel", compact=True)
            for note in self.spec.notes:
                yield Static(note, classes="form-note")
        yield Static(t("回车/Tab 下一项 · Shift+Tab 上一项 · * 为必填",
                       "Enter/Tab next · Shift+Tab back · * required"), id="form-keys")
        yield Footer()

    @staticmethod
    def _dom(key: str) -> str:
        return key.replace(".", "-")

    def _label(self, slot: Slot) -> Text:
        text = Text()
        text.append("*" if slot.required else " ", style="bold red")
        text.append(" " + slot.label)
        text.append(" " * max(0, self.label_width - cell_len(text.plain)))
        return text

    def on_mount(self) -> None:
        for key, value in self.spec.initial.items():
            if key in self.slots:
                self.field(key).set_raw(value)
        self._baseline = self.raw_values()
        if self.draft:
            for key, value in self.draft.items():
                if key in self.slots:  # (a choice that no longer exists is left blank)
                    self.field(key).set_raw(value)
            self._last_draft = dict(self.draft)
            self.notify(t("已恢复未保存的草稿", "Restored an unsaved draft"))
        self._switch_groups()
        first = next((w for w in self.fields().values() if not w.disabled), None)  # type: ignore[attr-defined]
        if first is not None:
            self._focus_field(first)

    # -- the fields ----------------------------------------------------------------------------
    def fields(self) -> dict[str, FieldWidget]:
        return dict(self._widgets)

    def field(self, key: str) -> FieldWidget:
        return self._widgets[key]

    def _focus_field(self, widget: Any) -> None:
        if isinstance(widget, PickField):
            widget.query_input.focus()
        else:
            widget.focus()

    def _active(self, key: str) -> bool:
        slot = self.slots[key]
        return not (slot.group and self._existing_picked())

    def _existing_picked(self) -> bool:
        return "existing" in self.slots and self.field("existing").get_raw() is not None

    def _switch_groups(self) -> None:
        """In the inflow form, a member picked from this store needs no new member's rows."""
        for key, slot in self.slots.items():
            if slot.group:
                off = not self._active(key)
                self.query_one("#row-" + self._dom(key)).set_class(off, "-off")
                widget: Widget = self.field(key)  # type: ignore[assignment]
                widget.disabled = off

    def raw_values(self) -> dict[str, Any]:
        """Every active field as its widget holds it."""
        return {key: w.get_raw() for key, w in self.fields().items() if self._active(key)}

    def changed_values(self) -> dict[str, Any]:
        current = self.raw_values()
        return {k: v for k, v in current.items() if v != self._baseline.get(k)}

    def store_values(self) -> dict[str, Any]:
        """What goes to the store: for a new record everything given, for an edit what
        changed (a blank ID number keeps the one on record)."""
        if self.spec.editing:
            return {k: v for k, v in self.changed_values().items()
                    if not (v is None and self.slots[k].keep_if_blank)}
        return {k: v for k, v in self.raw_values().items() if v is not None}

    @property
    def dirty(self) -> bool:
        return bool(self.changed_values())

    # -- errors --------------------------------------------------------------------------------
    def show_error(self, key: str, message: str | None) -> None:
        error = self.query_one("#err-" + self._dom(key), Static)
        error.update(Text(message or ""))
        error.set_class(bool(message), "-shown")
        widget = self.field(key)
        if isinstance(widget, Input):
            widget.set_class(bool(message), "-invalid")

    def has_error(self, key: str) -> bool:
        return self.query_one("#err-" + self._dom(key), Static).has_class("-shown")

    def show_summary(self, message: str | None) -> None:
        summary = self.query_one("#form-summary", Static)
        summary.update(Text(message or ""))
        summary.set_class(bool(message), "-shown")

    def check_field(self, widget: FieldWidget) -> str | None:
        """What is wrong with one field as typed, by the schema's rules (None: nothing)."""
        message = widget.local_issue()
        if message is None and isinstance(widget, (TextField, DateField)):
            raw = widget.get_raw()
            if raw is not None:
                found = coerce(self.slots[widget.slot_key].field, raw,
                               self.app.today_date())  # type: ignore[attr-defined]
                if isinstance(found, Issue):
                    message = _say(found)
        return message

    def _slot_for(self, name: str) -> str | None:
        for key, slot in self.slots.items():
            if slot.field.name == name and self._active(key):
                return key
        alias = self.spec.aliases.get(name)
        return alias if alias in self.slots and self._active(alias) else None

    def precheck(self) -> list[tuple[str, Issue]]:
        """What the schema refuses field by field (required, formats), before the store is
        asked: so every such issue shows at once, not those of one record at a time."""
        today = self.app.today_date()  # type: ignore[attr-defined]
        found = []
        for key, widget in self.fields().items():
            slot = self.slots[key]
            if not self._active(key):
                continue
            raw = widget.get_raw()
            if raw is None and slot.required:
                found.append((key, issue(slot.field, "required")))
            elif raw is not None and isinstance(widget, (TextField, DateField)):
                value = coerce(slot.field, raw, today)
                if isinstance(value, Issue):
                    found.append((key, value))
        return found

    def show_issues(self, issues: list[Issue], keys: list[str | None] | None = None) -> None:
        for key in self.slots:
            self.show_error(key, None)
        elsewhere: list[str] = []
        first: str | None = None
        for n, item in enumerate(issues):
            key = keys[n] if keys is not None else self._slot_for(item.field)
            if key is None:
                elsewhere.append(_say(item))
                continue
            first = first or key
            if not self.has_error(key):
                self.show_error(key, _say(item))
        n = len(issues)
        head = t(f"未保存：有 {n} 处需要修改", f"Not saved: {n} thing(s) to fix")
        self.show_summary("\n".join([head, *elsewhere]))
        if first is not None:
            self._focus_field(self.field(first))
            self.query_one("#row-" + self._dom(first)).scroll_visible()

    # -- events --------------------------------------------------------------------------------
    def _edited(self, widget: FieldWidget | None) -> None:
        if widget is None or self._finished:
            return
        key = widget.slot_key
        if key == "existing":
            self._switch_groups()
        if key in self.slots and self.has_error(key) and self.check_field(widget) is None:
            self.show_error(key, None)
        if self.dirty or self._last_draft is not None:
            self._schedule_draft()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._edited(owner_field(event.input))

    def on_select_changed(self, event: Select.Changed) -> None:
        self._edited(owner_field(event.select))

    def on_field_edited(self, event: FieldEdited) -> None:
        self._edited(event.field)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        widget = owner_field(event.input)
        if widget is not None:
            event.stop()
            self._leave(widget)

    def on_field_done(self, event: FieldDone) -> None:
        self._leave(event.field)

    def _leave(self, widget: FieldWidget) -> None:
        """Enter on a field: check it and move to the next one (from the last one, to Save)."""
        self.show_error(widget.slot_key, self.check_field(widget))
        focused = self.focused
        if focused is not None and owner_field(focused) is widget:
            self.focus_next()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        widget = owner_field(event.widget)
        if widget is not None and not self._finished and widget.slot_key in self.slots:
            self.show_error(widget.slot_key, self.check_field(widget))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-save":
            self.action_save()
        elif event.button.id == "form-cancel":
            self.action_cancel()

    # -- saving and leaving --------------------------------------------------------------------
    def action_save(self) -> None:
        if self._saving or self._finished:
            return
        store = self.app.store  # type: ignore[attr-defined]
        if store is None:
            return
        local = {k: m for k, w in self.fields().items()
                 if self._active(k) and (m := w.local_issue()) is not None}
        if local:
            for key, message in local.items():
                self.show_error(key, message)
            self.show_summary(t("未保存：有需要修改的地方", "Not saved: something to fix"))
            self._focus_field(self.field(next(iter(local))))
            return
        found = self.precheck()
        if found:
            self.show_issues([i for _, i in found], [k for k, _ in found])
            return
        values = self.store_values()
        if self.spec.editing and not values:
            self._finish()
            self.notify(t("没有修改", "Nothing changed"))
            return
        self._saving = True
        try:
            subject = self.spec.save(store, values)
        except ValidationError as exc:
            self.show_issues(exc.issues)
            return
        except LiudongError as exc:
            for key in self.slots:
                self.show_error(key, None)
            self.show_summary(exc.zh if current_lang() == "zh" else exc.en)
            field = getattr(exc, "field", None) if isinstance(exc, Forbidden) else None
            key = self._slot_for(field) if field else None
            if key is not None:
                self.show_error(key, t("此项不能由本组织修改", "this organization may not change this"))
            return
        finally:
            self._saving = False
        self._finish()
        app: Any = self.app
        app.revision += 1  # screens below refresh even if the store does not announce commits
        app.notify(self.spec.confirmation(subject))

    def _finish(self) -> None:
        """Leave the form for good: no draft to keep."""
        self._finished = True
        if self._draft_timer is not None:
            self._draft_timer.stop()
        store = self.app.store  # type: ignore[attr-defined]
        if store is not None:
            from tui.forms import drop_draft

            try:
                drop_draft(store, self.spec.key)
            except LiudongError as exc:
                self.notify(exc.message(), severity="error")
        self.dismiss(None)

    def action_cancel(self) -> None:
        if not self.dirty:
            self._finish()
            return
        from tui.screens.confirm import ConfirmScreen

        def answered(discard: bool | None) -> None:
            if discard:
                self._finish()

        self.app.push_screen(ConfirmScreen(
            t("放弃修改？", "Discard the changes?"),
            t("已填写的内容不会保存。", "What was typed here will not be saved.")), answered)

    # -- drafts --------------------------------------------------------------------------------
    def _schedule_draft(self) -> None:
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_DELAY, self.write_draft)

    def write_draft(self) -> None:
        """Keep what was typed (or forget the draft when nothing is changed any more)."""
        store = self.app.store  # type: ignore[attr-defined]
        if self._finished or store is None:
            return
        from tui.forms import drop_draft, save_draft

        values = self.changed_values()
        try:
            if not values:
                if self._last_draft is not None:
                    drop_draft(store, self.spec.key)
                self._last_draft = None
            elif values != self._last_draft:
                save_draft(store, self.spec, values)
                self._last_draft = values
        except LiudongError as exc:  # the store failed or closed: say so, keep the form
            self.notify(exc.message(), severity="error")

    def on_unmount(self) -> None:
        # The window closed or the app quit with the form open: keep what was typed.
        if self._draft_timer is not None:
            self._draft_timer.stop()
        if not self._finished:
            self.write_draft()


class MemberPickScreen(ModalScreen[str | None]):
    """Which member? Search as in the members list; Enter picks, Esc gives up."""

    DEFAULT_CSS = """
    MemberPickScreen { align: center top; }
    MemberPickScreen > Vertical { width: 70; max-width: 100%; height: auto; margin-top: 2;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    MemberPickScreen #pick-title { text-style: bold; }
    MemberPickScreen .pick-keys { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "give_up", t("取消", "Cancel"))]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        store = self.app.store  # type: ignore[attr-defined]
        with Vertical():
            yield Static(self.title_text, id="pick-title")
            yield PickField("pick", member_finder(store), lambda i: member_label(store, i),
                            placeholder=t("输入姓名、拼音、首字母、手机或身份证尾号",
                                          "name, pinyin, initials, phone or ID suffix"))
            yield Static(t("↑↓ 选择 · 回车确定 · Esc 取消", "↑↓ choose · Enter picks · Esc cancels"),
                         classes="pick-keys")

    def on_mount(self) -> None:
        self.query_one(PickField).query_input.focus()

    def on_field_done(self, event: FieldDone) -> None:
        picked = event.field.get_raw()
        if picked:
            self.dismiss(str(picked))

    def action_give_up(self) -> None:
        self.dismiss(None)


class TypePickScreen(ModalScreen[str | None]):
    """Which kind of record? A numbered list: a digit or Enter picks, Esc gives up."""

    DEFAULT_CSS = """
    TypePickScreen { align: center middle; }
    TypePickScreen > Vertical { width: 44; height: auto; max-height: 90%;
                                border: thick $primary; background: $surface; padding: 0 1; }
    TypePickScreen #pick-title { text-style: bold; }
    TypePickScreen OptionList, TypePickScreen OptionList:focus { height: auto; max-height: 18;
                                                             border: none; }
    """
    BINDINGS = [Binding("escape", "give_up", t("取消", "Cancel"))]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="pick-title")
            yield OptionList(*[Option(Text.assemble((f"{n:>2} ", "dim"), label), id=name)
                               for n, (name, label) in enumerate(self.choices, 1)])

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.isdigit() and event.character != "0":
            n = int(event.character)
            if n <= len(self.choices):
                event.stop()
                self.dismiss(self.choices[n - 1][0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id))

    def action_give_up(self) -> None:
        self.dismiss(None)
