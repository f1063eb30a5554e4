"""The laptop trusts nothing it cannot verify (DESIGN §3.4, issue "hostile network"): every answer
of the county server is signed with its identity key and bound to the request it answers; an
answer from anything else at the server's address — a rogue host on the link, a wrong DNS
answer, a forged enrollment code's server — is acted on never: no erasure, no change.

The rogue answers here are made as an attacker makes them: httpx's own MockTransport stands for
whatever answers at the address; the device, its store and the real county are the real ones."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from store import Store, StoreNotFound
from store.register import add_member
from sync import client as client_module
from sync.client import Device
from sync.errors import Refused, Revoked, Unverified
from sync.protocol import (
    ANSWER_HEADER,
    NONCE_HEADER,
    SYNC_PATH,
    Asked,
    encode_body,
    make_code,
    request_digest,
    sign_answer,
    sign_request,
    unb64u,
)
from sync.server.admin import revoke_device
from tests.conftest import PASSPHRASE
from tests.sync.harness import County


def rogue(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    """Whatever answers at the county server's address instead of it."""
    return httpx.Client(base_url="http://county.test", transport=httpx.MockTransport(answer))


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    """An answer as it arrives: a stream the client reads as it comes."""
    return httpx.Response(status, headers=headers or {}, stream=httpx.ByteStream(body))


def asked_of(request: httpx.Request) -> Asked:
    """What a rogue that has seen the request binds its forged answer to, as the server would."""
    return Asked(request.headers[NONCE_HEADER], request.method, request.url.path,
                 request_digest(request.headers.get("authorization"), request.content))


def problem(code: str, status: int = 403) -> httpx.Response:
    return answer(status, json.dumps({"error": code, "zh": "已注销", "en": "revoked"}).encode())


def unsent_member_survives(device: Device, member_id: str) -> None:
    path = device.store.path
    assert device.store.get(member_id) is not None
    device.store.close()
    with Store.open(path, PASSPHRASE) as again:  # the keys are all there
        assert again.get(member_id)["name"] == "未同步"
        assert again.state.outbox


def test_an_unsigned_revocation_from_the_link_erases_nothing(
        county: County, county_tree: dict[str, str]) -> None:
    """Before: any JSON {"error": "revoked"} from whatever answered made the client erase its
    key slots, together with a member not yet sent."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "未同步"})
    a._http = rogue(lambda request: problem("revoked"))
    with pytest.raises(Unverified):
        a.sync()
    county.stores.remove(a.store)
    unsent_member_survives(a, member_id)


def test_a_revocation_signed_by_another_key_erases_nothing(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "未同步"})
    impostor = Ed25519PrivateKey.generate().private_bytes(
        ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())

    def signed_by_impostor(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"error": "revoked", "zh": "x", "en": "x"}).encode()
        sig = sign_answer(impostor, asked_of(request), 403, None, body)
        return answer(403, body, {ANSWER_HEADER: sig})

    a._http = rogue(signed_by_impostor)
    with pytest.raises(Unverified):
        a.sync()
    county.stores.remove(a.store)
    unsent_member_survives(a, member_id)


def test_a_real_answer_replayed_to_another_request_is_not_acted_on(
        county: County, county_tree: dict[str, str]) -> None:
    """The county's own signed refusal, recorded on the link and played back to a later request:
    it is bound to the request it answered (its nonce), so it does not verify."""
    a = county.device("a", county_tree["a"])
    recorded: list[httpx.Response] = []
    real = county.http._transport

    def record(request: httpx.Request) -> httpx.Response:
        response = real.handle_request(request)
        raw = b"".join(response.iter_raw())
        recorded.append((response.status_code, raw, dict(response.headers)))
        return answer(response.status_code, raw, dict(response.headers))

    a._http = httpx.Client(base_url="http://county.test", transport=httpx.MockTransport(record))
    revoke_device(county.engine, a.store.device_id)
    b = county.device("b", county_tree["a"])
    b_member = add_member(b.store, {"name": "未同步"})
    with pytest.raises(Revoked):  # the real, signed revocation: a's keys go, as they should
        a.sync()
    county.stores.remove(a.store)
    with pytest.raises(StoreNotFound):
        Store.open(a.store.path, PASSPHRASE)
    status, raw, headers = recorded[-1]
    assert status == 403 and headers.get(ANSWER_HEADER)
    # played back to b, whose device is not revoked
    b._http = rogue(lambda request: answer(status, raw, headers))
    with pytest.raises(Unverified):
        b.sync()
    county.stores.remove(b.store)
    unsent_member_survives(b, b_member)


def _under_the_victims_nonce(county: County, attacker: Device,
                             ) -> Callable[[httpx.Request], httpx.Response]:
    """Someone on a plain-HTTP link who holds another device's key (revoked, or active at
    another organization) reads the victim's nonce and sends the county a request of their own,
    validly signed, under it; the county's real, signed answer goes back to the victim."""
    def relay(request: httpx.Request) -> httpx.Response:
        body = encode_body({"device_id": attacker.store.device_id, "epoch": None, "cursor": 0,
                            "ops": [], "max_bytes": 262144,
                            "head": int(attacker.store.meta["dev_seq"])})
        auth = sign_request(unb64u(attacker.store.meta["private_key"]),
                            attacker.store.device_id, "POST", SYNC_PATH, body, int(time.time()))
        own = county.http.build_request("POST", SYNC_PATH, content=body, headers={
            "content-type": "application/json", "content-encoding": "deflate",
            "accept-encoding": "deflate", NONCE_HEADER: request.headers[NONCE_HEADER],
            "authorization": auth})
        response = county.http._transport.handle_request(own)
        return answer(response.status_code, b"".join(response.iter_raw()),
                      dict(response.headers))
    return relay


def test_the_countys_answer_to_a_revoked_device_under_my_nonce_erases_nothing(
        county: County, county_tree: dict[str, str]) -> None:
    """Before: answers were bound to the nonce alone, so the county's signed "revoked" for a
    revoked device's request, sent under the victim's nonce, erased the victim's store."""
    attacker = county.device("attacker", county_tree["a"])
    victim = county.device("victim", county_tree["b"])
    member_id = add_member(victim.store, {"name": "未同步"})
    revoke_device(county.engine, attacker.store.device_id)
    victim._http = rogue(_under_the_victims_nonce(county, attacker))
    with pytest.raises(Unverified):
        victim.sync()
    county.stores.remove(victim.store)
    unsent_member_survives(victim, member_id)


def test_another_devices_answer_under_my_nonce_is_not_applied(
        county: County, county_tree: dict[str, str]) -> None:
    """Before: an active device of another organization relayed its own answer under the
    victim's nonce; the victim took in that organization's member and marked its own unsent
    member as acknowledged: lost."""
    attacker = county.device("attacker", county_tree["c"])
    add_member(attacker.store, {"name": "外组织成员"})
    attacker.sync()
    victim = county.device("victim", county_tree["b"])
    member_id = add_member(victim.store, {"name": "未同步"})
    cursor = victim.store.meta.get("cursor", 0)
    victim._http = rogue(_under_the_victims_nonce(county, attacker))
    with pytest.raises(Unverified):
        victim.sync()
    assert victim.store.meta.get("cursor", 0) == cursor
    assert "外组织成员" not in {m["name"] for m in victim.store.live("member")}
    county.stores.remove(victim.store)
    unsent_member_survives(victim, member_id)


def test_a_forged_enrollment_code_erases_nothing(county: County, tmp_path: Path) -> None:
    """A forged code pointing at a rogue server whose answers verify with the key the forgery
    carries: enrolling can never erase anything, whatever it hears."""
    store = county.new_store("never-enrolled")
    member_id = add_member(store, {"name": "未同步"})
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    from sync.protocol import b64u

    forged = make_code("AAAA-BBBB-CCCC-DDDD-EEEE", "http://rogue.test", b64u(public), None)

    def revoked_and_signed(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"error": "revoked", "zh": "x", "en": "x"}).encode()
        sig = sign_answer(raw, asked_of(request), 403, None, body)
        return answer(403, body, {ANSWER_HEADER: sig})

    device = Device(store, http=httpx.Client(base_url="http://rogue.test",
                                             transport=httpx.MockTransport(revoked_and_signed)),
                    sleep=lambda s: None)
    with pytest.raises(Refused):
        device.enroll(forged)
    county.stores.remove(store)
    store.close()
    with Store.open(tmp_path / "never-enrolled", PASSPHRASE) as again:
        assert again.get(member_id) is not None


def test_an_answer_that_inflates_to_a_gigabyte_is_bounded(
        county: County, county_tree: dict[str, str]) -> None:
    """Before: a rogue answer of 1 MB that inflated to 1 GiB drove `liudong sync` to 9.5 GB.
    Unsigned, it is never inflated; even signed with the server's own key (a server gone
    wrong), it is inflated only up to a bound."""
    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "未同步"})
    inflater = zlib.compressobj(9)
    zero = bytes(1 << 20)
    bomb = b"".join(inflater.compress(zero) for _ in range(1024)) + inflater.flush()
    assert len(bomb) < 2 << 20  # ~1 MB that inflates to 1 GiB
    from sync.server import identity as identity_module

    server_key = identity_module.identity(county.engine).private_key

    def bomb_answer(signed: bool) -> Callable[[httpx.Request], httpx.Response]:
        def bombed(request: httpx.Request) -> httpx.Response:
            headers = {"content-encoding": "deflate"}
            if signed:
                headers[ANSWER_HEADER] = sign_answer(server_key, asked_of(request), 200,
                                                     "deflate", bomb)
            return answer(200, bomb, headers)
        return bombed

    for signed in (False, True):
        a._http = rogue(bomb_answer(signed))
        tracemalloc.start()
        with pytest.raises((Unverified, client_module.SyncError)):
            a.sync()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 120 * 1024 * 1024, peak  # bounded: far from 1 GiB
    assert a.store.get(member_id) is not None and a.store.state.outbox


def test_an_answer_larger_than_any_of_ours_is_not_read_to_its_end(
        county: County, county_tree: dict[str, str]) -> None:
    a = county.device("a", county_tree["a"])
    read = []

    def endless(request: httpx.Request) -> httpx.Response:
        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(1000):  # 1 GB if read whole
                read.append(1)
                yield os.urandom(1 << 20)
        return httpx.Response(200, content=chunks())  # an iterator: streamed, not read first

    a._http = rogue(endless)
    with pytest.raises(client_module.SyncError):
        a.sync()
    assert len(read) < 100 * a.attempts  # each attempt stops at the bound (8 MiB)


def test_an_answer_trickled_forever_meets_a_deadline(county: County, county_tree: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a = county.device("a", county_tree["a"])
    monkeypatch.setattr(client_module, "DEADLINE", 0.3)

    def trickle(request: httpx.Request) -> httpx.Response:
        def chunks():  # type: ignore[no-untyped-def]
            import time

            while True:  # one byte at a time, well inside any read timeout
                time.sleep(0.05)
                yield b" "
        return httpx.Response(200, content=chunks())

    a._http = rogue(trickle)
    with pytest.raises(client_module.SyncError):
        a.sync()


def test_a_laptop_enrolled_before_answers_were_signed_learns_the_key_only_from_its_county(
        county: County, county_tree: dict[str, str]) -> None:
    """A store enrolled by an older version has no server key: it syncs no more until it enrolls
    again with a code of its own organization, which keeps its key and its records. A code for
    another server, or for another organization, changes nothing (before: the pinned
    certificate was replaced before the answer was verified, and a forged code's server became
    the laptop's)."""
    from sync.errors import SyncError
    from sync.server.admin import make_enroll_code

    a = county.device("a", county_tree["a"])
    member_id = add_member(a.store, {"name": "未同步"})
    a.store.set_meta(server_key=None)  # as an older version left it
    before = {k: a.store.meta.get(k) for k in ("server_url", "tls_pem", "server_key")}
    with pytest.raises(SyncError, match="enroll"):
        a.sync()
    elsewhere = make_enroll_code(county.engine, county_tree["a"], "http://rogue.test", 1)["code"]
    with pytest.raises(SyncError, match="another server"):
        a.enroll(elsewhere)
    with pytest.raises(Refused):  # the county refuses it; the laptop would too
        a.enroll(county.code(county_tree["b"]))
    assert {k: a.store.meta.get(k) for k in before} == before
    a.enroll(county.code(county_tree["a"]))
    assert a.store.meta["server_key"]
    a.sync()
    b = county.device("b", county_tree["a"])  # the member reached the county
    assert b.store.get(member_id)["name"] == "未同步"
