"""Help (f1): every key of the interface."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from tui.output import t

HELP_ZH = """\
# 按键

| 按键 | 作用 |
|---|---|
| `ctrl+p` | 命令面板：所有操作 |
| `ctrl+q` | 退出 |
| `f1` | 本帮助 |
| `f5` | 立即同步 |
| `1`–`6` | 待办、党员、流动、会议、统计与任务、同步（输入框无焦点时） |

**列表中**：`/` 搜索，`↑↓` 移动，`回车` 打开，`n` 新增，`e` 编辑，`esc` 返回

**党员页**：`e` 编辑，`o` 登记流出，`r` 记录报到，`c` 记录联系，`x` 结束流动，`a` 添加其他记录

**表单中**：`回车`/`tab` 下一项，`ctrl+s` 保存，`esc` 取消（有改动时先询问）；日期格式 `YYYY-MM-DD`

搜索：姓名、全拼、首字母（`zs` 找到 张三）、手机号、身份证号尾号。
"""

HELP_EN = """\
# Keys

| key | does |
|---|---|
| `ctrl+p` | command palette: every action |
| `ctrl+q` | quit |
| `f1` | this help |
| `f5` | sync now |
| `1`–`6` | worklist, members, flows, meetings, county and tasks, sync (when no text field has focus) |

**In lists**: `/` search, `↑↓` move, `enter` open, `n` new, `e` edit, `esc` back

**Member page**: `e` edit, `o` outflow, `r` report-in, `c` contact, `x` end flow, `a` add another record

**In forms**: `enter`/`tab` next field, `ctrl+s` save, `esc` cancel (asks first when something changed); dates as `YYYY-MM-DD`

Search: name, pinyin, initials (`zs` finds 张三), phone, the end of the ID number.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", t("关闭", "Close"))]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(t(HELP_ZH, HELP_EN))
