"""The workflows across the county, against the real app and database: an appraisal recorded by
the host reaches the home side and is noted there (M-4.2); a transfer's receipt hands the member
over to the receiving branch, whose device then holds the member (M-1.4); a mobile-member
organization needs a county committee's approval on the server too (M-4.1); and a modified client
that skips a workflow step is refused by the server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from store.errors import ValidationError
from store.register import add_member, flow_out
from store.workflows import draft_transfer, issue_transfer, receive_transfer
from sync.client import Device
from sync.protocol import SYNC_PATH, encode_body, sign_request, unb64u
from sync.server import db
from sync.server.admin import add_org
from tests.sync.harness import County


def test_m4_2_an_appraisal_by_the_host_reaches_home_and_is_noted(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    b = county.device("b", county_tree["b"])
    member_id = add_member(a.store, {"name": "张三"})
    flow_out(a.store, member_id, {"left_on": "2025-03-01", "reason": "work",
                                  "host_org_id": county_tree["b"]})
    a.sync()
    b.sync()
    appraisal = b.store.put("appraisal", {"member_id": member_id, "year": 2025,
                                          "by_org_id": county_tree["b"], "result": "excellent"})
    assert b.sync().rejected == []
    assert a.sync().rejected == []  # the home receives it, notes the day, and sends that back
    noted = a.store.get(appraisal)["notified_home_on"]
    assert noted and a.store.state.pending_count() == 0
    b.sync()
    assert b.store.get(appraisal)["notified_home_on"] == noted  # the host sees it was told


def test_m1_4_a_received_transfer_moves_the_member_to_the_receiving_branch(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    c = county.device("c", county_tree["c"])
    member_id = add_member(a.store, {"name": "李四"})
    transfer = draft_transfer(a.store, member_id, {"to_org_id": county_tree["c"]})
    issue_transfer(a.store, transfer, {"dues_paid_until": "2026-10"})
    receive_transfer(a.store, transfer)
    assert a.sync().rejected == []
    assert a.store.get(member_id) is None  # handed over: a no longer holds the member
    c.sync()
    assert c.store.get(member_id)["home_org_id"] == county_tree["c"]
    assert c.store.get(transfer)["status"] == "received"  # the record travels with the member


def forge(county: County, device: Device, rec_id: str, type_name: str,
          values: dict[str, Any]) -> dict[str, Any]:
    """Send one op as a modified client would: numbered after what the server applied, signed
    with the device's own key, with no local check."""
    with db.read(county.engine) as conn:
        seq = int(conn.execute(select(db.devices.c.applied_dev_seq).where(
            db.devices.c.device_id == device.store.device_id)).scalar_one()) + 1
    ms = time.time_ns() // 1_000_000
    op = {"device_id": device.store.device_id, "dev_seq": seq, "rec_id": rec_id,
          "type": type_name, "set": values, "base": {}, "hlc": f"{ms:012x}0000"}
    raw = encode_body({"device_id": device.store.device_id, "epoch": device.store.meta["epoch"],
                       "cursor": int(device.store.meta.get("cursor", 0)), "ops": [op],
                       "head": seq})
    header = sign_request(unb64u(device.store.meta["private_key"]), device.store.device_id,
                          "POST", SYNC_PATH, raw, int(time.time()))
    response = county.http.post(SYNC_PATH, content=raw, headers={
        "authorization": header, "content-encoding": "deflate"})
    assert response.status_code == 200, response.text
    return response.json()


def test_m1_4_a_modified_client_cannot_skip_a_step(
        county: County, county_tree: dict[str, str]) -> None:
    """``draft → received`` (the member handed over with no letter ever issued) and an issued
    letter's destination changed afterwards are refused by the server, which judges each op
    against the record it holds."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "王五"})
    transfer = draft_transfer(a.store, member_id, {"to_org_text": "外省某党委"})
    a.sync()
    answer = forge(county, a, transfer, "transfer", {"status": "received",
                                                     "received_on": "2026-10-01"})
    assert [r["field"] for r in answer["rejected"]] == ["status"]
    issue_transfer(a.store, transfer, {"dues_paid_until": "2026-10"})
    a.sync()
    answer = forge(county, a, transfer, "transfer", {"to_org_text": "别处党委"})
    assert [r["field"] for r in answer["rejected"]] == ["to_org_text"]
    a.sync()
    assert a.store.get(transfer)["to_org_text"] == "外省某党委"


def test_m4_1_the_server_refuses_an_unapproved_mobile_member_organization(
        county: County, county_tree: dict[str, str]) -> None:
    base = {"name": "驻深圳流动党员党支部", "kind": "mobile_branch", "parent_id": county_tree["town"]}
    with pytest.raises(ValidationError) as exc:
        add_org(county.engine, base)
    assert {i.rule for i in exc.value.issues} == {"approval_needed"}
    with pytest.raises(ValidationError) as exc:
        add_org(county.engine, {**base, "approved_by_org_id": county_tree["town"],
                                "approved_on": "2026-01-05"})
    assert {i.rule for i in exc.value.issues} == {"approver_level"}
    org = add_org(county.engine, {**base, "approved_by_org_id": county_tree["county"],
                                  "approved_on": "2026-01-05"})
    a = county.device("m", org)
    assert a.store.get(org)["approved_by_org_id"] == county_tree["county"]
