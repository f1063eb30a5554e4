"""Help (f1): every key of the interface, in two columns that fit 80×24."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.output import t

KEYS: tuple[tuple[str, str, str], ...] = (
    ("", "全局", "Everywhere"),
    ("ctrl+p", "命令面板：所有操作", "command palette: every action"),
    ("ctrl+q", "退出", "quit"),
    ("f1", "本帮助", "this help"),
    ("f5", "立即同步", "sync now"),
    ("1 … 6", "待办、党员、流动、会议、统计与任务、同步（输入框无焦点时）",
     "worklist, members, flows, meetings, county and tasks, sync (when no text field has focus)"),
    ("", "列表中", "In lists"),
    ("/", "搜索：姓名、拼音、首字母（zs 找到 张三）、手机、身份证尾号",
     "search: name, pinyin, initials (zs finds 张三), phone, ID-number end"),
    ("↑ ↓ pgup pgdn", "移动", "move"),
    ("enter", "打开", "open"),
    ("n / e", "新增 / 编辑", "new / edit"),
    ("esc", "返回", "back"),
    ("", "党员页", "A member's page"),
    ("e", "编辑", "edit"),
    ("o", "登记流出", "register an outflow"),
    ("r", "记录报到", "record the report-in"),
    ("c", "记录联系", "log a contact"),
    ("x", "结束流动", "end the flow"),
    ("a", "添加其他记录（学习、关怀、评议……）", "add another record (study, care, appraisal, …)"),
    ("", "表单中", "In forms"),
    ("enter / tab", "下一项（shift+tab 上一项）", "next field (shift+tab back)"),
    ("ctrl+s", "保存", "save"),
    ("esc", "取消（有改动时先询问）", "cancel (asks first when something changed)"),
    ("YYYY-MM-DD", "日期格式", "dates"),
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=13)
    table.add_column()
    for key, zh, en in KEYS:
        if not key:
            table.add_row(Text(t(zh, en), style="bold underline"), "")
        else:
            table.add_row(key, t(zh, en))
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", t("关闭", "Close"))]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_table())
