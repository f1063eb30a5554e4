"""``liudong worklist``: what is due, grouped by kind, each item citing its requirement
(DESIGN §2.3, store/rules.py)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from tui.cli import CliError, unlock


def _today(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--today 应为 YYYY-MM-DD 格式的日期：{text}",
                       f"--today must be a date as YYYY-MM-DD: {text}") from None


def cmd_worklist(args: argparse.Namespace) -> int:
    from store.errors import current_lang
    from store.rules import KINDS, worklist
    from tui.output import print_json, t

    today = _today(args.today)
    kinds = set(args.kind or ())
    with unlock(args) as store:
        items = [i for i in worklist(store, today) if not kinds or i.kind in kinds]
    if args.json:
        print_json([i.to_json() for i in items])
        return 0
    day = (today or dt.date.today()).isoformat()
    if not items:
        print(t(f"没有待办事项（{day}）。", f"Nothing is due ({day})."))
        return 0
    lang = current_lang()
    print(t(f"待办事项 {len(items)} 项（{day}）", f"{len(items)} item(s) due ({day})"))
    group = None
    for item in items:
        if item.kind != group:
            group = item.kind
            size = sum(1 for i in items if i.kind == group)
            mandate = KINDS[group][2]
            cite = f"（{mandate}）" if mandate and lang == "zh" else f" ({mandate})" if mandate else ""
            print()
            print(t(f"{item.title_zh}{cite}：{size} 项", f"{item.title_en}{cite}: {size}"))
        print(f"  {item.since}  {item.text(lang)}  …{item.rec_id[-8:]}")
    return 0


def add_commands(sub: Any, command: Any) -> None:
    from store.rules import KINDS

    sp = command(sub, "worklist", cmd_worklist,
                 "待办事项：逾期未报到、应联系、失联、待转正等，按类别列出并注明政策条款 / what is "
                 "due: overdue reports, contacts, lost contact, conversions…, grouped, each citing "
                 "the policy", True)
    sp.add_argument("--today", metavar="YYYY-MM-DD",
                    help="按这一天计算（默认今天）/ compute as of this day (default: today)")
    sp.add_argument("--kind", action="append", choices=list(KINDS), metavar="KIND",
                    help="只列这一类（可重复）/ only this kind (repeatable): " + ", ".join(KINDS))
