"""Benchmark of ``liudong import`` (DESIGN §5, §7): a roster of 10,000 members, xlsx and csv.

    python bench/bench_import.py              # 10,000 rows, plus 1,000 / 2,500 / 5,000 for the trend
    python bench/bench_import.py --quick      # 2,000 rows
    python bench/bench_import.py --profile    # cProfile the import of the xlsx, print the top

Each file (xlsx written by openpyxl, csv in GBK as Chinese Excel and WPS save it) is imported
into a fresh encrypted store (light KDF: key derivation is not what is measured) through the
command's own code: read and map the rows (``tui.roster.read_sheet``), validate each row in one
batch and commit it (``tui.roster.plan_import``); a dry run (validate, abandon) first, timed
apart. Printed beside the anchors measured in the
same run: openpyxl alone reading the xlsx (``iter_rows(values_only=True)``, read-only mode) and
the csv module alone reading the csv. Target: 10,000 rows "in seconds" (≤ 10 s end to end).

The figures split the import into reading, validating (``Batch.put`` for every row) and the
commit (one journal frame, applied in memory), and show how validation grows with the number of
rows (constant per row is linear; a growing per-row cost is quadratic).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import datetime as dt
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store import TEST_KDF, Store  # noqa: E402
from store.validate import id_check_char  # noqa: E402
from tui.roster import plan_import, read_sheet  # noqa: E402

PASSPHRASE = "correct horse battery"
SEED = 20261203
ORG = {"name": "城关镇党委", "kind": "committee", "division_code": "330106"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红海波宁晨阳欣怡浩然子涵梓萱宇轩"
HEADINGS = ["序号", "姓名", "性别", "公民身份号码", "民族", "出生日期", "学历", "入党日期", "转正日期",
            "人员类别", "所在党支部", "联系电话", "备注"]
TARGET_S = 10.0


def roster(n: int, rng: random.Random) -> list[list[Any]]:
    """``n`` distinct members as the national system exports them (unique ID numbers)."""
    rows: list[list[Any]] = []
    education = ("初中", "高中", "中专", "大学专科", "大学本科", "研究生")
    for i in range(n):
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 50))
        seq = i % 1000
        body = f"330106{born:%Y%m%d}{seq:03d}"
        number = body + id_check_char(body)
        joined = born.replace(year=born.year + 25) if born.month != 2 or born.day != 29 else \
            dt.date(born.year + 25, 3, 1)
        probationary = i % 20 == 0
        if probationary:
            joined = dt.date(2026, 3, 1)
        converted = dt.date(joined.year + 1, joined.month, min(joined.day, 28))
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        rows.append([i + 1, name, "男" if int(body[16]) % 2 else "女", number, "汉族",
                     born.isoformat(), rng.choice(education), joined.isoformat(),
                     converted.isoformat(), "预备党员" if probationary else "正式党员",
                     ORG["name"], f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                     ""])
    seen: set[str] = set()
    for row in rows:  # drop the rare repeated number (same birth date, same sequence)
        if row[3] in seen:
            row[3] = ""
        seen.add(row[3])
    return rows


def write_files(rows: list[list[Any]], where: Path) -> tuple[Path, Path]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("党员信息")
    sheet.append(HEADINGS)
    for row in rows:
        sheet.append(row)
    xlsx = where / "roster.xlsx"
    book.save(xlsx)
    path = where / "roster.csv"
    with path.open("w", encoding="gbk", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADINGS)
        writer.writerows(rows)
    return xlsx, path


def anchor_xlsx(path: Path) -> float:
    from openpyxl import load_workbook

    start = time.perf_counter()
    book = load_workbook(path, read_only=True, data_only=True)
    n = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert n > 1
    return time.perf_counter() - start


def anchor_csv(path: Path) -> float:
    start = time.perf_counter()
    with path.open(encoding="gbk", newline="") as f:
        n = sum(1 for _ in csv.reader(f))
    assert n > 1
    return time.perf_counter() - start


def import_once(path: Path, store_dir: Path, profile: cProfile.Profile | None = None,
                ) -> dict[str, float]:
    """Read, validate and commit one file into a fresh store; the seconds of each step."""
    store, _ = Store.create(store_dir, PASSPHRASE, kdf=TEST_KDF, org=dict(ORG))
    commits: list[float] = []
    commit = store.commit

    def timed_commit(entry: dict[str, Any]) -> None:
        begin = time.perf_counter()
        commit(entry)
        commits.append(time.perf_counter() - begin)

    store.commit = timed_commit  # type: ignore[method-assign]
    with store:
        start = time.perf_counter()
        if profile is not None:
            profile.enable()
        sheet = read_sheet(path)
        read = time.perf_counter()
        dry = plan_import(store, sheet, None, commit=False)
        validated = time.perf_counter()
        assert not commits
        plan = plan_import(store, sheet, None, commit=True)
        done = time.perf_counter()
        if profile is not None:
            profile.disable()
        assert not plan.errors, plan.errors[:3]
        assert len(plan.imported) == len(sheet.rows) == len(dry.members), len(plan.imported)
        assert sum(1 for _ in store.live("member")) == len(plan.imported)
    return {"rows": len(sheet.rows), "read": read - start, "import": (read - start) + (
        done - validated), "commit": sum(commits), "validate": done - validated - sum(commits),
        "dry_run": (read - start) + (validated - read)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows")
    parser.add_argument("--rows", type=int, default=None, help="rows of the main run")
    parser.add_argument("--profile", action="store_true", help="cProfile the xlsx import")
    parser.add_argument("--dir", type=Path, default=None, help="where the files and stores go")
    args = parser.parse_args()
    n = args.rows or (2_000 if args.quick else 10_000)
    trend = [] if args.quick or args.rows else [1_000, 2_500, 5_000]
    rng = random.Random(SEED)
    print(f"liudong import benchmark: {n:,} rows (xlsx and GBK csv), seed {SEED}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="liudong-bench-", dir=args.dir) as tmp:
        where = Path(tmp)
        for size in [*trend, n]:
            rows = roster(size, rng)  # 所在党支部 names the store's own org: resolve_org per row
            sub = where / f"n{size}"
            sub.mkdir()
            xlsx, csv_path = write_files(rows, sub)
            profile = cProfile.Profile() if args.profile and size == n else None
            for kind, path, anchor in (("xlsx", xlsx, anchor_xlsx), ("csv", csv_path, anchor_csv)):
                base = anchor(path)
                got = import_once(path, sub / f"store-{kind}",
                                  profile if kind == "xlsx" else None)
                rate = got["rows"] / got["import"]
                print(f"  {size:>6,} rows {kind:<4}  import {got['import']:6.2f} s "
                      f"({rate:7,.0f} rows/s) = read {got['read']:5.2f} s + validate "
                      f"{got['validate']:5.2f} s + commit {got['commit']:5.2f} s (dry run "
                      f"{got['dry_run']:5.2f} s);  "
                      f"validate per row {got['validate'] / got['rows'] * 1e3:5.2f} ms;  "
                      f"anchor {'openpyxl read' if kind == 'xlsx' else 'csv read'} "
                      f"{base:5.2f} s, read / anchor {got['read'] / base:4.1f}×, "
                      f"import / anchor {got['import'] / base:5.1f}×")
                if size == n and got["import"] > TARGET_S:
                    ok = False
            if profile is not None:
                print()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    print(f"target: {n:,} rows in ≤ {TARGET_S:.0f} s each: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
