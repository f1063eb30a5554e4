"""``liudong worklist`` as a user runs it (DESIGN §2.3, §5): a real process per command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from store.register import add_member, flow_out
from tests.cli.test_commands import assert_clean_error, liudong
from tests.conftest import create_store


def make_store(path: Path) -> tuple[str, str]:
    """A branch with one member 40 days gone and not reported, one out of contact."""
    store, _ = create_store(path)
    with store:
        left = (dt.date.today() - dt.timedelta(days=40)).isoformat()
        away = add_member(store, {"name": "张三", "joined_on": "2010-07-01"})
        flow_id = flow_out(store, away, {"left_on": left, "reason": "work",
                                         "external_host": "南山区科技园党委",
                                         "home_contact": "李书记"})
        lost = add_member(store, {"name": "李四", "joined_on": "2010-07-01",
                                  "lost_contact_since": "2026-01-05"})
    return flow_id, lost


def test_worklist_groups_the_items_in_chinese_citing_the_policy(tmp_path: Path) -> None:
    flow_id, lost = make_store(tmp_path / "s")
    r = liudong("worklist", store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "逾期未报到（M-1.2）：1 项" in out and "张三 外出 40 天仍未报到" in out
    assert "失联党员（M-2.2b）：1 项" in out and "李四 失联（自 2026-01-05）" in out
    assert flow_id[-8:] in out and lost[-8:] in out
    assert out.index("逾期未报到") < out.index("失联党员")  # in the order of the groups


def test_worklist_in_english(tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    r = liudong("--lang", "en", "worklist", store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "Report overdue (M-1.2): 1" in r.stdout
    assert "张三 has not reported in 40 days after leaving" in r.stdout


def test_worklist_json_is_a_list_of_items(tmp_path: Path) -> None:
    flow_id, lost = make_store(tmp_path / "s")
    r = liudong("worklist", "--json", store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    by_kind = {i["kind"]: i for i in items}
    assert by_kind["report_overdue"]["rec_id"] == flow_id
    assert by_kind["report_overdue"]["mandate"] == "M-1.2"
    assert by_kind["lost_contact"]["member_id"] == lost
    assert set(items[0]) == {"kind", "mandate", "rec_id", "member_id", "since", "side", "zh",
                             "en", "title_zh", "title_en"}
    r = liudong("worklist", "--json", "--kind", "lost_contact", store=tmp_path / "s")
    assert [i["kind"] for i in json.loads(r.stdout)] == ["lost_contact"]


def test_worklist_as_of_a_day(tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    early = (dt.date.today() - dt.timedelta(days=15)).isoformat()  # 25 days after leaving
    r = liudong("worklist", "--today", early, "--kind", "report_overdue", store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "没有待办事项" in r.stdout
    assert_clean_error(liudong("worklist", "--today", "2026-13-01", store=tmp_path / "s"),
                       "--today")


def test_worklist_of_an_empty_store(tmp_path: Path) -> None:
    create_store(tmp_path / "s")[0].close()
    r = liudong("worklist", store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "没有待办事项" in r.stdout
    assert json.loads(liudong("worklist", "--json", store=tmp_path / "s").stdout) == []
