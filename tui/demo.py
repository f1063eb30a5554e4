"""``liudong demo``: a demo register of plausible members and flows, and a tour of the commands.

Until the terminal interface exists, the demo builds the store, then runs the commands a branch
worker uses on it and shows what each prints. The store stays behind for the user to explore.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from store import Store, WrongPassphrase
from store.register import flow_in, flow_out, log_contact, report_in
from store.validate import id_check_char

DEMO_PASSPHRASE = "liudong-demo"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤单"
GIVEN_MALE = "伟强磊军洋勇杰涛明超辉刚平建国志华文斌俊峰鹏飞宇浩亮成林海波"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲桂兰萍红梅琳燕雪慧颖佳倩婷"
# Host places of outflow members: division code, address, employer, host organization.
DESTINATIONS = [
    ("440305", "广东省深圳市南山区科技园", "深圳某电子科技有限公司", "南山区科技园综合党委"),
    ("310115", "上海市浦东新区张江镇", "上海某生物医药公司", "张江镇两新组织党委"),
    ("330106", "浙江省杭州市西湖区", "杭州某网络科技公司", None),
    ("320505", "江苏省苏州市虎丘区", "苏州某精密制造公司", "苏州高新区非公企业党委"),
    ("110105", "北京市朝阳区望京街道", "北京某物流公司", None),
    ("500112", "重庆市渝北区", "重庆某建筑劳务公司", "渝北区流动党员党支部"),
    ("350203", "福建省厦门市思明区", "厦门某外贸公司", None),
]
HOME_REGION = "411522"  # the demo county's division code (光山县, Henan)


def _id_number(rng: random.Random, born: dt.date, male: bool) -> str:
    seq = rng.randrange(0, 1000)
    if (seq % 2 == 1) != male:
        seq = (seq + 1) % 1000
    body = f"{HOME_REGION}{born:%Y%m%d}{seq:03d}"
    return body + id_check_char(body)


def _phone(rng: random.Random) -> str:
    return rng.choice(["13", "15", "18", "17", "19"]) + f"{rng.randrange(10**9):09d}"


def build_demo(store: Store, members: int = 200, seed: int = 2026,
               today: dt.date | None = None) -> dict[str, str]:
    """Plausible members, outflows (host known or not), inflows, report-ins and contacts.
    Returns the ids of the members the tour uses by name."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    named: dict[str, str] = {}
    ids: list[str] = []
    people: list[tuple[str, bool, dt.date]] = [("张三", True, dt.date(1988, 5, 12)),
                                               ("单丽", False, dt.date(1992, 9, 3))]
    while len(people) < members:
        male = rng.random() < 0.62
        given = "".join(rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
                        for _ in range(rng.choice((1, 2, 2))))
        born = dt.date(rng.randint(1950, 2002), rng.randint(1, 12), rng.randint(1, 28))
        people.append((rng.choice(SURNAMES) + given, male, born))
    with store.batch(today) as b:
        for name, male, born in people:
            joined = born.replace(year=born.year + rng.randint(19, 40))
            joined = min(joined, today - dt.timedelta(days=400))
            values: dict[str, Any] = {
                "name": name, "gender": "male" if male else "female",
                "birth_date": born.isoformat(), "id_number": _id_number(rng, born, male),
                "phone": _phone(rng), "ethnicity": "汉族",
                "education": rng.choice(["junior", "senior", "college", "bachelor"]),
                "standing": "full", "joined_on": max(joined, born.replace(year=born.year + 18)
                                                     ).isoformat(),
                "home_org_id": store.meta["own_org_id"],
            }
            member_id = b.put("member", values)
            ids.append(member_id)
            if name in ("张三", "单丽"):
                named[name] = member_id
    outflow = [i for i in ids[2:] if rng.random() < 0.22]
    for member_id in outflow:
        code, address, employer, host = rng.choice(DESTINATIONS)
        left = today - dt.timedelta(days=rng.randint(10, 900))
        values = {"left_on": left.isoformat(), "reason": rng.choice(["work"] * 5 + ["study"]),
                  "destination_division_code": code, "destination_address": address,
                  "destination_employer": employer, "home_contact": "李书记",
                  "certificate_no": f"豫信流{rng.randrange(10**6):06d}"}
        if host:
            values["external_host"] = host
        flow_id = flow_out(store, member_id, values)
        if rng.random() < 0.75:
            report_in(store, flow_id,
                      min(left + dt.timedelta(days=rng.randint(3, 45)), today).isoformat())
        for _ in range(rng.randint(0, 3)):
            on = left + dt.timedelta(days=rng.randint(0, (today - left).days))
            log_contact(store, member_id, {
                "on": on.isoformat(), "channel": rng.choice(["phone", "wechat", "wechat"]),
                "reached": rng.random() < 0.85, "by": "李书记",
                "summary": rng.choice(["工作稳定", "已参加流入地组织生活", "提醒按时交纳党费",
                                       "电话未接通", "了解到更换了工作单位"])})
    for _ in range(max(2, members // 25)):
        male = rng.random() < 0.6
        born = dt.date(rng.randint(1970, 2000), rng.randint(1, 12), rng.randint(1, 28))
        given = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
        arrived = today - dt.timedelta(days=rng.randint(5, 400))
        flow_in(store, {
            "name": rng.choice(SURNAMES) + given, "gender": "male" if male else "female",
            "birth_date": born.isoformat(), "phone": _phone(rng),
            "external_home_org": rng.choice(["安徽省六安市某村党支部", "湖北省黄冈市某社区党支部",
                                             "四川省南充市某村党支部"]),
        }, {"left_on": arrived.isoformat(), "reason": "work",
            "reported_on": (arrived + dt.timedelta(days=3)).isoformat()})
    return named


def _tour_step(title: str, argv: list[str]) -> None:
    from tui.cli import main

    print()
    if title:
        print(f"━━ {title}")
    print("$ liudong " + " ".join(shlex.quote(a) for a in argv))
    sys.stdout.flush()
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        print(f"  （退出码 {code} / exit code {code}）")


def run_demo(args: argparse.Namespace) -> int:
    path = Path(args.store or "demo-store").expanduser()
    if (path / "keyslots").exists():
        try:
            Store.open(path, DEMO_PASSPHRASE).close()
        except WrongPassphrase:
            print(f"{path} 中已有一个不是演示用的存储，请用 --store 另选目录 | "
                  f"{path} holds a store that is not the demo; choose another --store",
                  file=sys.stderr)
            return 2
        shutil.rmtree(path)
    print(f"正在建立演示存储 {path}（口令：{DEMO_PASSPHRASE}）… | building the demo store…")
    store, recovery = Store.create(path, DEMO_PASSPHRASE, org={
        "name": "光山县城关镇城关村党支部", "kind": "branch", "division_code": HOME_REGION,
        "secretary": "李书记"})
    with store:
        build_demo(store, members=args.members)
        members = sum(1 for _ in store.live("member"))
        flows = sum(1 for _ in store.live("flow"))
    print(f"已建立：{members} 名党员，{flows} 条流动登记 | built: {members} members, {flows} flows")
    os.environ["LIUDONG_STORE"] = str(path)
    os.environ["LIUDONG_PASSPHRASE"] = DEMO_PASSPHRASE
    today = dt.date.today()
    _tour_step("党员名单（前 8 人） / the register", ["member", "list", "--limit", "8"])
    _tour_step("按拼音首字母检索 / find by pinyin initials", ["member", "list", "--search", "zs"])
    _tour_step("多音字姓氏：单 读 shan / surnames read as surnames",
               ["member", "list", "--search", "shanli"])
    _tour_step("正在外出的党员 / members away", ["member", "list", "--mobility", "outflow",
                                                 "--limit", "6"])
    _tour_step("登记流出 / register an outflow", [
        "flow", "out", "张三", "--left-on", (today - dt.timedelta(days=20)).isoformat(),
        "--reason", "work", "--destination-division-code", "440305",
        "--destination-address", "广东省深圳市南山区科技园", "--destination-employer",
        "深圳某电子科技有限公司", "--external-host", "南山区科技园综合党委",
        "--home-contact", "李书记"])
    _tour_step("记录报到 / record reporting in", [
        "flow", "report", "zs", "--on", (today - dt.timedelta(days=12)).isoformat()])
    _tour_step("记录联系 / log a contact", [
        "contact", "log", "zs", "--on", today.isoformat(), "--channel", "wechat",
        "--reached", "yes", "--by", "李书记", "--note", "工作稳定，已参加流入地主题党日"])
    _tour_step("查看党员（身份证号已遮盖） / a member's page (ID number masked)",
               ["member", "show", "zs"])
    body = f"{HOME_REGION}19850315123"
    mistyped = body + ("0" if id_check_char(body) != "0" else "1")  # a wrong check character
    _tour_step("错误输入会被拒绝并说明原因 / bad input is refused with a reason", [
        "member", "add", "--name", "李明", "--id-number", mistyped])
    _tour_step("逐字节校验存储 / verify every byte", ["doctor"])
    port = _county_tour(path, today)
    print()
    print("━━ 继续体验 / explore on your own:")
    print(f"  export LIUDONG_STORE={shlex.quote(str(path))} LIUDONG_PASSPHRASE={DEMO_PASSPHRASE}")
    print("  .venv/bin/liudong member list --search wang")
    print("  .venv/bin/liudong --help")
    print(f"  恢复密钥 / recovery key: {recovery}")
    print(f"  县级服务器（再次同步前先启动）/ the county server, to sync again: .venv/bin/liudong "
          f"serve --db {shlex.quote(str(_county_db(path)))} --port {port}")
    return 0


def _county_db(path: Path) -> Path:
    return path.with_name(path.name + "-county.db")


def _county_tour(path: Path, today: dt.date) -> int:
    """A county server on loopback: the demo laptop and a second branch's laptop enroll, and
    an outflow registered at one branch arrives at its host branch."""
    import socket
    import threading
    import time

    import uvicorn

    from sync.server import db, identity
    from sync.server.admin import add_org, make_enroll_code
    from sync.server.app import create_app

    county_db = _county_db(path)
    other = path.with_name(path.name + "-b")
    county_db.unlink(missing_ok=True)
    shutil.rmtree(other, ignore_errors=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = db.make_engine(f"sqlite:///{county_db.resolve()}")
    db.migrate(engine)
    # TLS with the certificate the server makes for itself, as `liudong serve` does
    tls = tempfile.TemporaryDirectory(prefix="liudong-demo-tls-")
    files = []
    for name, pem in zip(("cert.pem", "key.pem"), identity.self_signed(engine), strict=True):
        fd = os.open(Path(tls.name) / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        files.append(str(Path(tls.name) / name))
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port,
                                           log_level="warning", ssl_certfile=files[0],
                                           ssl_keyfile=files[1]))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"https://127.0.0.1:{port}"
    print()
    print(f"━━ 县级服务器已在 {url} 启动（TLS；登记码携带其公钥和证书指纹）/ a county server on "
          "loopback (TLS; codes carry its key and certificate fingerprint)")
    county = add_org(engine, {"name": "光山县委", "kind": "county", "division_code": HOME_REGION})
    town = add_org(engine, {"name": "城关镇党委", "kind": "committee", "parent_id": county})
    branch_a = add_org(engine, {"name": "城关村党支部", "kind": "branch", "parent_id": town})
    branch_b = add_org(engine, {"name": "东关村党支部", "kind": "branch", "parent_id": town})
    print("  组织 / organizations: 光山县委 → 城关镇党委 → 城关村党支部、东关村党支部")
    try:
        for store_path, org, name in ((path, branch_a, "城关村"), (other, branch_b, "东关村")):
            if store_path == other:
                Store.create(other, DEMO_PASSPHRASE, org={"name": "东关村党支部",
                                                          "kind": "branch"})[0].close()
            code = make_enroll_code(engine, org, url, 1)["code"]
            _tour_step(f"{name}的电脑用登记码登记并首次同步 / the {name} laptop enrolls",
                       ["--store", str(store_path), "enroll", "--code", code])
        left = (today - dt.timedelta(days=7)).isoformat()
        _tour_step("城关村登记单丽流出到东关村（组织用名称指定）/ an outflow to the other branch, "
                   "named by name", [
                       "--store", str(path), "flow", "out", "单丽", "--left-on", left,
                       "--reason", "务工", "--host-org-id", "东关村"])
        _tour_step("城关村同步 / the home branch syncs", ["--store", str(path), "sync"])
        _tour_step("东关村同步：单丽出现在流入地 / the host branch syncs",
                   ["--store", str(other), "sync"])
        _tour_step("东关村看到的是流入党员 / at the host the member shows as inflow",
                   ["--store", str(other), "member", "list", "--mobility", "流入"])
        _tour_step("东关村记录报到并同步 / the host records the report-in", [
            "--store", str(other), "flow", "report", "shanli", "--on", today.isoformat()])
        _tour_step("", ["--store", str(other), "sync"])
        _tour_step("城关村同步后看到报到 / the home branch sees it",
                   ["--store", str(path), "sync"])
        _tour_step("", ["--store", str(path), "member", "show", "shanli"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        tls.cleanup()
    return int(port)
