"""The widgets of a form's rows, one per kind of schema field (``store/schema.py``).

Every field widget answers the same three questions (:class:`FieldWidget`): what it holds, as
the store takes it (``get_raw``), how to put a value back (``set_raw``, for drafts and edits),
and whether what was typed cannot be a value at all (``local_issue``: a name typed into a
member picker but no member picked). What the value means is for ``store.validate`` to say.

Keys: Enter moves on from every widget (the form listens for :class:`FieldDone`); a choice is
picked by its number, by typing (the menu opens and searches), or with space/arrows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, MaskedInput, OptionList, Select, Static
from textual.widgets.option_list import Option

from store.schema import CHOICES
from tui.output import t

if TYPE_CHECKING:
    from store import Store
    from store.schema import Field

# Characters each kind may hold as it is typed; full-width digits come from Chinese input
# methods and are folded by store.validate.coerce.
RESTRICT = {
    "id_number": r"[0-9Xx０-９Ｘｘ]*",
    "phone": r"[0-9０-９+\- ]*",
    "int": r"[0-9０-９]*",
    "hours": r"[0-9０-９.．]*",
    "money": r"[0-9０-９.．]*",
    "year": r"[0-9０-９]*",
    "division_code": r"[0-9０-９]*",
}
MAX_LENGTH = {"id_number": 18, "phone": 20, "int": 9, "hours": 12, "money": 14, "year": 4,
              "division_code": 12}
MASKS = {"date": ("9999-99-99", "YYYY-MM-DD"), "month": ("9999-99", "YYYY-MM")}
PICK_ROWS = 6


class FieldEdited(Message):
    """A field widget's value changed (widgets that are not a plain Input say so this way)."""

    def __init__(self, field: FieldWidget) -> None:
        super().__init__()
        self.field = field


class FieldDone(Message):
    """The person is done with a field (Enter, or a choice picked): the form moves on."""

    def __init__(self, field: FieldWidget) -> None:
        super().__init__()
        self.field = field


class FieldWidget:
    """What the form asks every field widget (a mixin of Textual widgets)."""

    slot_key: str = ""

    def get_raw(self) -> Any:
        raise NotImplementedError

    def set_raw(self, value: Any) -> None:
        raise NotImplementedError

    def local_issue(self) -> str | None:
        return None


def owner_field(widget: Any) -> FieldWidget | None:
    """The field widget ``widget`` is, or is part of."""
    node = widget
    while node is not None:
        if isinstance(node, FieldWidget):
            return node
        node = getattr(node, "parent", None)
    return None


class TextField(Input, FieldWidget):
    """Text, numbers, phone and ID numbers. An ID number shows in full here: the person is
    typing it (elsewhere it is masked)."""

    def __init__(self, slot_key: str, f: Field, placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(placeholder=placeholder, compact=True,
                         restrict=RESTRICT.get(f.kind),
                         max_length=MAX_LENGTH.get(f.kind, f.max_len), **kwargs)
        self.slot_key = slot_key

    def get_raw(self) -> Any:
        return self.value.strip() or None

    def set_raw(self, value: Any) -> None:
        self.value = "" if value is None else str(value)
        self.cursor_position = len(self.value)


class DateField(MaskedInput, FieldWidget):
    """A date (``YYYY-MM-DD``) or a month (``YYYY-MM``) typed into a mask: the dashes come by
    themselves."""

    def __init__(self, slot_key: str, f: Field, **kwargs: Any) -> None:
        template, placeholder = MASKS[f.kind]
        super().__init__(template, placeholder=placeholder, compact=True, **kwargs)
        self.slot_key = slot_key

    def get_raw(self) -> Any:
        value = self.value.rstrip()
        return value if value.strip(" -") else None

    def set_raw(self, value: Any) -> None:
        self.value = "" if value is None else str(value)
        self.cursor_position = len(self.value)


class ChoiceField(Select[Any], FieldWidget):
    """One of a few choices (enum, yes/no, an organization), numbered: a digit picks (1–9),
    typing opens the menu and searches it, Backspace clears."""

    # The menu opens in the form's flow, pushing the rows below down, rather than over them:
    # drawn over other widgets, Textual cuts a CJK character that straddles an edge of a
    # widget underneath into blanks (信函 showed as 信).
    DEFAULT_CSS = """
    ChoiceField > SelectOverlay { overlay: none; constrain: none none; max-height: 10;
                                  background: $boost; }
    ChoiceField > SelectOverlay.-textual-compact > .option-list--option { padding: 0 1; }
    """
    BINDINGS = [
        Binding("enter", "done", show=False),
        Binding("down,space,up", "show_overlay", show=False),
        Binding("backspace,delete", "clear_choice", show=False),
    ]

    def __init__(self, slot_key: str, options: Sequence[tuple[str, Any]],
                 shortcuts: dict[str, Any] | None = None, **kwargs: Any) -> None:
        numbered = len(options) <= 9
        prompts = [(Text.assemble((f"{n} ", "dim"), label) if numbered else Text(label), value)
                   for n, (label, value) in enumerate(options, 1)]
        super().__init__(prompts, prompt=t("（未选）", "(none)"), allow_blank=True,
                         compact=True, type_to_search=True, **kwargs)
        self.slot_key = slot_key
        self._values = [v for _, v in options]
        self._plain = [(label.strip(), v) for label, v in options]
        self._shortcuts = dict(shortcuts or {})
        if numbered:
            self._shortcuts.update({str(n): v for n, v in enumerate(self._values, 1)})
        self._opened_with: Any = Select.NULL

    def get_raw(self) -> Any:
        return None if self.value is Select.NULL else self.value

    def set_raw(self, value: Any) -> None:
        if value is None:
            self.value = Select.NULL
        elif value in self._values:
            self.value = value

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        return character is not None and character.isprintable() and character != " "

    async def _on_key(self, event: events.Key) -> None:
        char = event.character
        if self.expanded or char is None or not char.isprintable() or char == " ":
            return
        event.stop()
        event.prevent_default()
        if char.lower() in self._shortcuts:
            self.value = self._shortcuts[char.lower()]
            self.post_message(FieldDone(self))
            return
        # Open the menu and let it search for what is typed.
        self.action_show_overlay()
        overlay = self.query_one("SelectOverlay")
        overlay.post_message(events.Key(event.key, char))

    def watch_value(self, value: Any) -> None:
        # The numbers are for picking: the chosen value reads without its number.
        if value is not Select.NULL:
            for label, option_value in self._plain:
                if option_value == value:
                    current: Any = self.query_one("SelectCurrent")
                    current.update(label)

    def watch_expanded(self, expanded: bool) -> None:
        if expanded:
            self._opened_with = self.value
            self.call_after_refresh(self.scroll_visible)
        elif self.value != self._opened_with:
            self.post_message(FieldDone(self))

    def action_done(self) -> None:
        self.post_message(FieldDone(self))

    def action_clear_choice(self) -> None:
        self.value = Select.NULL


class PickField(Vertical, FieldWidget, can_focus=False):
    """A record picked by searching: a member by name, pinyin, initials, phone or ID suffix
    (the members list's search), or several of them (``multiple``: Enter ticks or unticks the
    highlighted match; Enter on an empty search moves on)."""

    DEFAULT_CSS = """
    PickField { height: auto; width: 1fr; }
    PickField > Input { width: 1fr; }
    PickField > Input.-textual-compact { padding: 0 1; }
    PickField > #chosen { color: $text-muted; height: auto; padding: 0 1; }
    PickField > OptionList { display: none; height: auto; max-height: 7; border: none;
                             padding: 0; background: $boost; }
    PickField.-open > OptionList { display: block; }
    PickField > OptionList.-textual-compact > .option-list--option,
    PickField > OptionList > .option-list--option { padding: 0 1; }
    """
    BINDINGS = [
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, slot_key: str, find: Callable[[str], list[tuple[str, str]]],
                 label_of: Callable[[str], str], *, multiple: bool = False,
                 placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slot_key = slot_key
        self.find = find
        self.label_of = label_of
        self.multiple = multiple
        self.placeholder = placeholder
        self.picked: list[str] = []
        self._shown_label = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder, compact=True, id="query")
        if self.multiple:
            yield Static("", id="chosen")
        matches = OptionList(id="matches", compact=True)
        matches.can_focus = False
        yield matches

    def on_mount(self) -> None:
        self._show_chosen()
        if self._shown_label:
            self.query_input.value = self._shown_label

    @property
    def query_input(self) -> Input:
        return self.query_one("#query", Input)

    # -- the value ---------------------------------------------------------------------------
    def get_raw(self) -> Any:
        if self.multiple:
            return list(self.picked) or None
        return self.picked[0] if self.picked else None

    def set_raw(self, value: Any) -> None:
        if self.multiple:
            self.picked = [str(v) for v in value or []]
            self._show_chosen()
            return
        self.picked = [str(value)] if value else []
        self._shown_label = self.label_of(str(value)) if value else ""
        for box in self.query("#query").results(Input):
            box.value = self._shown_label

    def local_issue(self) -> str | None:
        text = self.query_input.value.strip()
        if not self.multiple and text and not self.picked:
            return t("请从列表中选择（输入姓名、拼音或首字母，↓ 选择，回车确定）",
                     "pick one from the list (type a name, ↓ to choose, Enter)")
        return None

    def _show_chosen(self) -> None:
        if not self.multiple:
            return
        names = "、".join(self.label_of(i).split()[0] for i in self.picked)
        for chosen in self.query("#chosen").results(Static):
            chosen.update(t(f"已选 {len(self.picked)} 个：{names}",
                            f"{len(self.picked)} picked: {names}")
                          if self.picked else t("（未选）", "(none)"))

    # -- searching ---------------------------------------------------------------------------
    def _refresh_matches(self) -> None:
        text = self.query_input.value.strip()
        matches = self.query_one(OptionList)
        matches.clear_options()
        found = self.find(text) if text and text != self._shown_label else []
        for rec_id, label in found[:PICK_ROWS]:
            mark = ("✔ " if rec_id in self.picked else "  ") if self.multiple else ""
            matches.add_option(Option(mark + label, id=rec_id))
        if found:
            matches.highlighted = 0
        self.set_class(bool(found), "-open")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not self.multiple and event.value != self._shown_label and self.picked:
            self.picked = []
            self._shown_label = ""
            self.post_message(FieldEdited(self))
        self._refresh_matches()

    def _pick(self, rec_id: str) -> None:
        if self.multiple:
            if rec_id in self.picked:
                self.picked.remove(rec_id)
            else:
                self.picked.append(rec_id)
            self.query_input.value = ""
            self._show_chosen()
        else:
            self.picked = [rec_id]
            self._shown_label = self.label_of(rec_id)
            self.query_input.value = self._shown_label
            self.query_input.cursor_position = len(self._shown_label)
        self.set_class(False, "-open")
        self.post_message(FieldEdited(self))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        matches = self.query_one(OptionList)
        if self.has_class("-open") and matches.highlighted is not None:
            option = matches.get_option_at_index(matches.highlighted)
            self._pick(str(option.id))
            if self.multiple:
                return
        self.post_message(FieldDone(self))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._pick(str(event.option.id))
        self.query_input.focus()

    def action_move(self, delta: int) -> None:
        matches = self.query_one(OptionList)
        if not self.has_class("-open") or not matches.option_count:
            self.screen.focus_next() if delta > 0 else self.screen.focus_previous()
            return
        current = matches.highlighted or 0
        matches.highlighted = max(0, min(matches.option_count - 1, current + delta))

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # Leaving with a search that finds exactly one record picks it.
        if not self.multiple and not self.picked and self.query_input.value.strip():
            found = self.find(self.query_input.value.strip())
            if len(found) == 1:
                self._pick(found[0][0])
        self.set_class(False, "-open")


# -- what a field of each kind is shown with --------------------------------------------------
def member_label(store: Store, member_id: str) -> str:
    doc = store.get(member_id)
    if doc is None:
        return member_id[-8:]
    from tui.output import show_value

    parts = [str(doc.get("name") or "")]
    if doc.get("gender"):
        parts.append(show_value("member", "gender", doc["gender"]))
    if doc.get("birth_date"):
        parts.append(str(doc["birth_date"])[:4] + t("年生", ""))
    home = store.get(doc.get("home_org_id") or "")
    parts.append(str(home["name"]) if home else str(doc.get("external_home_org") or ""))
    return "  ".join(p for p in parts if p)


def member_finder(store: Store, outside_only: bool = False,
                  ) -> Callable[[str], list[tuple[str, str]]]:
    """Members matching a search as the members list finds them (``zs`` finds 张三);
    ``outside_only``: those whose home is not this organization (or below it)."""
    from store.search import filter_ids

    own = store.state.own_subtree() if outside_only else set()

    def find(query: str) -> list[tuple[str, str]]:
        out = []
        for rec_id in filter_ids(store.state.search, query):
            doc = store.get(rec_id)
            if doc is not None and doc["type"] == "member" and doc.get("home_org_id") not in own:
                out.append((rec_id, member_label(store, rec_id)))
                if len(out) > PICK_ROWS:
                    break
        return out

    return find


def org_options(store: Store) -> list[tuple[str, str]]:
    """Organizations this store holds, as a tree (children indented under their parent)."""
    from store.orgs import org_tree

    return [("  " * depth + str(org.get("name") or org["id"]), str(org["id"]))
            for depth, org in org_tree(store.live("org"))]


def org_finder(store: Store) -> Callable[[str], list[tuple[str, str]]]:
    def find(query: str) -> list[tuple[str, str]]:
        return [(i, label.strip()) for label, i in org_options(store) if query in label]

    return find


def record_label(store: Store, doc: dict[str, Any]) -> str:
    """A record as a choice shows it: a flow by when and why, others by their title field."""
    from store.schema import TYPES
    from tui.output import show_value

    if doc["type"] == "flow":
        return "  ".join(x for x in (
            str(doc.get("left_on") or ""), show_value("flow", "reason", doc.get("reason")),
            show_value("flow", "status", doc.get("status"))) if x)
    title = TYPES[doc["type"]].title
    return show_value(doc["type"], title, doc.get(title), store.get) or doc["id"][-8:]


def field_widget(slot: Any, store: Store) -> Widget:
    """The widget of a form row (``slot``: a :class:`tui.forms.Slot`)."""
    f: Field = slot.field
    key = slot.key
    wid = "f-" + key.replace(".", "-")
    if f.kind in ("date", "month"):
        return DateField(key, f, id=wid)
    if f.kind == "enum" and f.choices:
        options = [(t(zh, en), v) for v, zh, en in CHOICES[f.choices]]
        return ChoiceField(key, options, id=wid)
    if f.kind == "bool":
        return ChoiceField(key, [(t("是", "yes"), True), (t("否", "no"), False)],
                           shortcuts={"y": True, "是": True, "n": False, "否": False}, id=wid)
    if f.kind == "ref" and f.ref == "org":
        return ChoiceField(key, org_options(store), id=wid)
    if f.kind in ("ref", "refs") and f.ref == "member":
        return PickField(key, member_finder(store, slot.outside_only),
                         lambda i: member_label(store, i),
                         multiple=f.kind == "refs", id=wid, placeholder=slot.placeholder or (
                             t("输入姓名、拼音或首字母搜索，回车勾选或取消",
                               "type a name, pinyin or initials; Enter ticks or unticks")
                             if f.kind == "refs" else
                             t("输入姓名、拼音或首字母搜索", "type a name, pinyin or initials")))
    if f.kind == "refs" and f.ref == "org":
        return PickField(key, org_finder(store),
                         lambda i: str((store.get(i) or {}).get("name", i)), multiple=True,
                         id=wid, placeholder=t("输入组织名称搜索，回车勾选", "type a name; Enter ticks"))
    if f.kind == "ref" and f.ref:
        if slot.member_id and f.ref in ("flow",):
            docs = store.state.records_of(slot.member_id, f.ref)
        else:
            docs = list(store.live(f.ref))
        return ChoiceField(key, [(record_label(store, d), d["id"]) for d in docs], id=wid)
    return TextField(key, f, placeholder=slot.placeholder, id=wid)
