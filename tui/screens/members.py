"""Members (2): every member this organization holds, filtered as you type by name, pinyin,
initials (`zs` finds 张三), phone or ID-number suffix. The list is drawn line by line, so
20,000 rows cost what the screen shows; filtering is one pass over the search index."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Static

from store.search import filter_ids
from tui.output import t
from tui.screens.base import ListPage
from tui.view import member_row
from tui.widgets.record_list import Column, RecordList

COLUMNS = (
    Column("姓名", "name", 10),
    Column("性别", "sex", 4),
    Column("流动", "mob.", 4),
    Column("流入/流出地", "host / home", 20),
    Column("状态", "status", 8),
    Column("最近联系", "contact", 10),
    Column("手机", "phone", 11),
)


class MembersScreen(ListPage):
    SECTION = "members"
    BINDINGS = [
        Binding("n", "new", t("新增", "New")),
        Binding("e", "edit", t("编辑", "Edit")),
        Binding("o", "outflow", t("登记流出", "Outflow")),
        Binding("i", "inflow", t("登记流入", "Inflow")),
    ]
    COLUMNS = COLUMNS
    SEARCH_HINT = ("搜索：姓名、拼音、首字母、手机、身份证尾号（按 / ）",
                   "search: name, pinyin, initials, phone, ID suffix (press /)")
    EMPTY = ("没有符合的党员", "no member matches")
    HINT_ID = "count"

    def row(self, member_id: str) -> tuple[str, ...]:
        return member_row(self.store, member_id)

    def order(self) -> list[str]:
        if self._order is None:
            self._order = self.store.member_order()
        return self._order

    def refilter(self, keep: str | None = None) -> None:
        query = self.search_text
        order = self.order()
        if query:
            matched = set(filter_ids(self.store.state.search, query))
            ids = [i for i in order if i in matched]
        else:
            ids = order
        self.query_one(RecordList).set_ids(ids, keep)
        total = len(order)
        self.query_one("#count", Static).update(
            t(f"{len(ids)} / {total} 名党员", f"{len(ids)} of {total} members") if query else
            t(f"共 {total} 名党员", f"{total} members"), layout=False)

    def refresh_data(self) -> None:
        changes = self.take_changes()
        if changes is not None:
            changes = [c for c in changes if getattr(c, "kind", "") != "meta"]
            if not changes:
                return  # settings, drafts, sync bookkeeping: no row changes
        touched: set[str] | None = None
        if changes is not None and all(getattr(c, "kind", "") == "local" for c in changes):
            touched = set().union(*(c.ids for c in changes))
        if touched is not None and len(touched) < 50:
            # Local edits: forget the rows they touched (a member's row shows its flows and
            # contacts too)
            for rec_id in touched:
                doc = self.store.get(rec_id, include_deleted=True)
                self._cache.pop(rec_id, None)
                if doc is not None and doc.get("member_id"):
                    self._cache.pop(doc["member_id"], None)
            if any((self.store.get(i, include_deleted=True) or {}).get("type") == "member"
                   for i in touched):
                self._order = None
        else:
            self._cache.clear()
            self._order = None
        self.refilter()
        self.query_one(RecordList).redraw()

    # -- events --------------------------------------------------------------------------------
    def on_record_list_opened(self, event: RecordList.Opened) -> None:
        from tui.screens.member import MemberScreen

        self.app.push_screen(MemberScreen(event.rec_id))

    def action_new(self) -> None:
        from tui.forms import open_form

        open_form(self.app, "add_member")

    def action_edit(self) -> None:
        member_id = self.query_one(RecordList).current_id
        if member_id:
            from tui.forms import open_form

            open_form(self.app, "edit_member", member_id=member_id)

    def action_outflow(self) -> None:
        member_id = self.query_one(RecordList).current_id
        if member_id:
            from tui.forms import open_form

            open_form(self.app, "flow_out", member_id=member_id)

    def action_inflow(self) -> None:
        from tui.forms import open_form

        open_form(self.app, "flow_in")
