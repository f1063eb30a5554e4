"""Nothing readable touches the disk (DESIGN §2.4): after writing marker names, phones and ID
numbers, none of them appears in any file of the store directory in UTF-8, UTF-16, JSON
``\\u`` escapes or GBK — not in the journal, the snapshot, temporary files or the lock."""

from __future__ import annotations

import json
from pathlib import Path

from store import Store
from store.register import add_member, flow_out, log_contact
from tests.conftest import PASSPHRASE, create_store, make_id_number

NAMES = ["欧阳明珠", "司马相如", "诸葛孔明"]
PHONES = ["13912345678", "18687654321", "15011112222"]
IDS = [make_id_number("330106", "19850315", 123), make_id_number("110105", "19700101", 456),
       make_id_number("440305", "19921231", 789)]
ORG_NAME = "城关村党支部"
NOTE = "在深圳南山区科技园务工"


def encodings(text: str) -> list[bytes]:
    forms = [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be"),
             json.dumps(text).strip('"').encode("ascii"),
             json.dumps(text).strip('"').lower().encode("ascii")]
    try:
        forms.append(text.encode("gbk"))
    except UnicodeEncodeError:
        pass
    return [f for f in forms if len(f) >= 4]


def scan(directory: Path, markers: list[str]) -> list[str]:
    hits = []
    for f in sorted(directory.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            for marker in markers:
                for form in encodings(marker):
                    if form in data:
                        hits.append(f"{f.name}: {marker!r} as {form!r}")
    return hits


def test_no_personal_data_in_any_store_file(store_path: Path) -> None:
    store, _ = create_store(store_path)
    ids = []
    for name, phone, number in zip(NAMES, PHONES, IDS):
        ids.append(add_member(store, {"name": name, "phone": phone, "id_number": number,
                                      "notes": NOTE}))
    flow_out(store, ids[0], {"left_on": "2026-09-01", "reason": "work",
                             "destination_address": NOTE, "external_host": "南山区科技园党委"})
    log_contact(store, ids[0], {"on": "2026-10-01", "channel": "phone", "reached": True,
                                "summary": NOTE})
    markers = [*NAMES, *PHONES, *IDS, ORG_NAME, NOTE, IDS[0][-6:]]
    assert scan(store_path, markers) == []  # journal frames
    store.compact()
    assert scan(store_path, markers) == []  # snapshot
    store.change_passphrase("another passphrase", kdf=store_kdf())
    store.close()
    with Store.open(store_path, "another passphrase") as s:
        assert {m["name"] for m in s.live("member")} == set(NAMES)
    assert scan(store_path, [*markers, PASSPHRASE, "another passphrase"]) == []


def store_kdf():  # type: ignore[no-untyped-def]
    from store import TEST_KDF

    return TEST_KDF


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above can fail: plain files with the markers in each encoding are found."""
    for i, enc in enumerate(["utf-8", "utf-16-le", "gbk"]):
        (tmp_path / f"plain{i}").write_bytes(("x" + NAMES[0] + "y").encode(enc))
    (tmp_path / "escaped").write_text(json.dumps({"n": NAMES[1]}))
    (tmp_path / "phone").write_text(PHONES[2])
    assert len(scan(tmp_path, [*NAMES, *PHONES])) >= 5
