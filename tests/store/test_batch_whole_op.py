"""Two changes to one record in one batch reach the county server as one op, judged against the
record as it was before the batch. The laptop judges them so too: what it accepts, the server
keeps (an edit the system will not keep is refused when it is typed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import TEST_KDF, Forbidden, Store
from tests.conftest import PASSPHRASE


def host_store(path: Path) -> Store:
    store, _ = Store.create(path, PASSPHRASE, kdf=TEST_KDF,
                            org={"name": "东关村党支部", "kind": "branch"})
    return store


def test_an_arrival_reported_and_ended_in_one_batch_is_refused_whole(tmp_path: Path) -> None:
    with host_store(tmp_path / "s") as store:
        before = store.meta["dev_seq"]
        with pytest.raises(Forbidden), store.batch() as b:
            member = b.put("member", {"name": "周志强", "external_home_org": "某县某村党支部"})
            flow = b.put("flow", {"member_id": member, "host_org_id": store.meta["own_org_id"],
                                  "left_on": "2026-03-01", "reason": "work",
                                  "status": "reported", "reported_on": "2026-03-05"})
            # each step alone is allowed; as one op, the host's report-in lands on a flow
            # that arrives ended, which the server refuses
            b.put("flow", {"status": "ended", "ended_on": "2026-06-01",
                           "end_reason": "returned"}, flow)
        assert store.meta["dev_seq"] == before  # nothing half-written
        assert not list(store.live("member"))


def test_the_same_steps_in_two_batches_are_kept(tmp_path: Path) -> None:
    with host_store(tmp_path / "s") as store:
        with store.batch() as b:
            member = b.put("member", {"name": "周志强", "external_home_org": "某县某村党支部"})
            flow = b.put("flow", {"member_id": member, "host_org_id": store.meta["own_org_id"],
                                  "left_on": "2026-03-01", "reason": "work",
                                  "status": "reported", "reported_on": "2026-03-05"})
        store.put("flow", {"status": "ended", "ended_on": "2026-06-01",
                           "end_reason": "returned"}, flow)
        assert store.get(flow)["status"] == "ended"


def test_two_edits_of_one_field_in_a_batch_that_the_server_keeps(tmp_path: Path) -> None:
    with host_store(tmp_path / "s") as store:
        with store.batch() as b:
            member = b.put("member", {"name": "王小明",
                                      "home_org_id": store.meta["own_org_id"]})
            b.put("member", {"phone": "13800138000"}, member)
            b.put("member", {"phone": "13900139000", "notes": "新号码"}, member)
        doc = store.get(member)
        assert doc["phone"] == "13900139000" and doc["notes"] == "新号码"
