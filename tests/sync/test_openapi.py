"""The county server against its own published OpenAPI (DESIGN §3.5, §7: "API fuzzing
(schemathesis on the OpenAPI): 0 server errors"), and directed tests of the bodies a fuzzer
seldom builds: cut-short and oversized compressed bodies, non-JSON, JSON of the wrong shape,
lying headers. Every refusal is a 4xx with a problem body ``{"error", "zh", "en"}``.

Schemathesis drives the real FastAPI app in process over a temporary SQLite database holding an
organization, an unused enrollment code and an enrolled device; each generated sync request is
also sent a second time signed by that device, so that generated bodies get past the signature
check into the sync handler itself.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from starlette.testclient import TestClient

from store.ids import new_ulid
from store.schema import TYPES
from sync.protocol import (
    ENROLL_PATH,
    MAX_BODY,
    SYNC_PATH,
    b64u,
    enroll_proof,
    new_keypair,
    parse_code,
    sign_request,
)
from sync.server import admin, db
from sync.server.app import create_app
from tests.sync.harness import County

# -- a small county on a temporary database (schemathesis loads the schema at import) ----------

_DIR = tempfile.mkdtemp(prefix="liudong-openapi-")
atexit.register(shutil.rmtree, _DIR, True)
ENGINE = db.make_engine(f"sqlite:///{_DIR}/county.db")
db.migrate(ENGINE)
COUNTY = admin.add_org(ENGINE, {"name": "光山县委", "kind": "county", "division_code": "411522"})
BRANCH = admin.add_org(ENGINE, {"name": "城关村党支部", "kind": "branch", "parent_id": COUNTY})
admin.make_enroll_code(ENGINE, BRANCH, "http://testserver")  # left unused, for the fuzzer


def _sign_raw(private: bytes, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return b64u(Ed25519PrivateKey.from_private_bytes(private).sign(message))


def enroll_body(engine: Any, org_id: str, **override: Any) -> tuple[dict[str, Any], bytes]:
    """A valid enrollment request for a new device of ``org_id`` and the device's private key."""
    token = parse_code(admin.make_enroll_code(engine, org_id, "http://testserver")["code"]).token
    private, public = new_keypair()
    device_id = override.pop("device_id", new_ulid())
    body = {"token": token, "device_id": device_id, "public_key": b64u(public), "name": "笔记本",
            "store_id": new_ulid(),
            "proof": _sign_raw(private, enroll_proof(token, device_id, b64u(public)))}
    return {**body, **override}, private


_body, PRIVATE = enroll_body(ENGINE, BRANCH)
DEVICE_ID = admin.enroll(ENGINE, _body)["device_id"]
APP = create_app(ENGINE)
CLIENT = TestClient(APP, base_url="http://testserver")
atexit.register(CLIENT.close)


def openapi_document() -> dict[str, Any]:
    response = CLIENT.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _hoisted(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with any ``$defs`` nested in a schema moved to ``components/schemas``,
    where its ``$ref``s point. A no-op on a sound document; on one whose references dangle
    (see test_every_reference_in_the_document_resolves) it lets the fuzzer still build bodies."""
    doc = json.loads(json.dumps(doc))
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.pop("$defs", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["paths"])
    doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in found.items():
        doc["components"]["schemas"].setdefault(name, schema)
    return doc


schema = schemathesis.openapi.from_dict(_hoisted(openapi_document()))
schema.app = APP

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def signed(body: bytes, device_id: str = DEVICE_ID, private: bytes = PRIVATE,
           created: int | None = None) -> str:
    return sign_request(private, device_id, "POST", SYNC_PATH, body,
                        int(time.time()) if created is None else created)


def applied_dev_seq(engine: Any, device_id: str) -> int:
    with db.read(engine) as conn:
        return int(conn.execute(select(db.devices.c.applied_dev_seq).where(
            db.devices.c.device_id == device_id)).scalar_one())


def as_signed_sync(body: Any) -> Any:
    """A generated sync body made to pass the envelope checks: this device's id, and its ops
    numbered from where the server is, so that they reach the op handling."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    body["device_id"] = DEVICE_ID
    ops = body.get("ops")
    if isinstance(ops, list):
        first = applied_dev_seq(ENGINE, DEVICE_ID) + 1
        body["ops"] = [{**op, "dev_seq": first + i} if isinstance(op, dict) else op
                       for i, op in enumerate(ops)]
    return body


@schema.parametrize()
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
def test_the_api_answers_as_documented_and_never_fails(case: Any) -> None:
    response = case.call()
    case.validate_response(response, checks=CHECKS)
    if case.path == SYNC_PATH and case.body is not None and hasattr(case.body, "keys"):
        raw = json.dumps(as_signed_sync(case.body), ensure_ascii=False).encode()
        response = CLIENT.post(SYNC_PATH, content=raw, headers={
            "authorization": signed(raw), "content-type": "application/json"})
        case.validate_response(response, checks=CHECKS)


# -- the document itself -------------------------------------------------------------------------

def test_every_reference_in_the_document_resolves() -> None:
    """A client generator (or a fuzzer) reading /openapi.json must find every ``$ref``."""
    doc = openapi_document()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    dangling = []
    for ref in refs:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            dangling.append(ref)
    assert refs and dangling == []
    assert {"/v1/health", ENROLL_PATH, SYNC_PATH} <= set(doc["paths"])


# -- bodies a fuzzer seldom builds ---------------------------------------------------------------

def problem(response: Any, *statuses: int) -> dict[str, Any]:
    """The response is one of ``statuses`` with a problem body in both languages."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body, dict) and {"error", "zh", "en"} <= set(body), body
    assert all(isinstance(body[k], str) and body[k] for k in ("error", "zh", "en")), body
    return body


def post(path: str, content: Any, sign: bool = True, **headers: str) -> Any:
    if path == SYNC_PATH and sign and isinstance(content, bytes):
        headers.setdefault("authorization", signed(content))
    return CLIENT.post(path, content=content, headers=headers)


def deflated(data: Any) -> bytes:
    return zlib.compress(json.dumps(data).encode())


PATHS = pytest.mark.parametrize("path", [SYNC_PATH, ENROLL_PATH])


@PATHS
def test_a_compressed_body_cut_short_is_refused(path: str) -> None:
    whole = deflated({"device_id": DEVICE_ID, "cursor": 0, "ops": [], "pad": "x" * 5000})
    for cut in (1, 2, len(whole) // 2, len(whole) - 1):
        problem(post(path, whole[:cut], **{"content-encoding": "deflate"}), 400)
    problem(post(path, b"\x78\x9c" + b"\xff" * 40, **{"content-encoding": "deflate"}), 400)


def test_bytes_after_the_compressed_body_are_refused() -> None:
    """A deflate body is one zlib stream; whatever follows it is not part of the request."""
    whole = deflated({"device_id": DEVICE_ID, "cursor": 0, "ops": []})
    assert post(SYNC_PATH, whole, **{"content-encoding": "deflate"}).status_code == 200
    problem(post(SYNC_PATH, whole + b"trailing", **{"content-encoding": "deflate"}), 400)
    problem(post(SYNC_PATH, whole + whole, **{"content-encoding": "deflate"}), 400)


@PATHS
def test_a_deflate_bomb_is_refused_quickly(path: str) -> None:
    """100 MB of zeros in about 100 KB: refused once MAX_BODY is out, never inflated whole."""
    squeeze = zlib.compressobj(9)
    chunk = b"0" * (1 << 20)
    bomb = b"".join(squeeze.compress(chunk) for _ in range(100)) + squeeze.flush()
    assert len(bomb) < MAX_BODY // 10
    started = time.perf_counter()
    problem(post(path, bomb, **{"content-encoding": "deflate"}), 400, 413)
    assert time.perf_counter() - started < 2.0
    # a JSON document a little over the limit, compressed small, is refused too
    big = zlib.compress(json.dumps({"ops": [], "pad": " " * (MAX_BODY + 10)}).encode(), 9)
    problem(post(path, big, **{"content-encoding": "deflate"}), 400, 413)


@PATHS
def test_bodies_that_are_not_json_are_refused(path: str) -> None:
    for raw in (b"", b"not json", b"{", b"\xff\xfe\x00", b"[1, 2,", b"{\"a\": NaN", b"\x00"):
        problem(post(path, raw, **{"content-type": "application/json"}), 400)
        problem(post(path, zlib.compress(raw), **{"content-encoding": "deflate"}), 400)
    problem(post(path, b"{}", **{"content-encoding": "gzip"}), 400)
    problem(post(path, b"{}", **{"content-encoding": "br, deflate"}), 400)


@PATHS
def test_json_of_the_wrong_shape_is_refused(path: str) -> None:
    shapes: list[Any] = [[], [1, 2], "text", 5, None, True, {"device_id": [DEVICE_ID]}]
    if path == SYNC_PATH:
        shapes += [
            {"device_id": DEVICE_ID, "ops": "not a list"},
            {"device_id": DEVICE_ID, "ops": {"dev_seq": 1}},
            {"device_id": DEVICE_ID, "cursor": "0"},
            {"device_id": DEVICE_ID, "cursor": -1},
            {"device_id": DEVICE_ID, "cursor": 1.5},
            {"device_id": DEVICE_ID, "max_bytes": 10},
            {"device_id": DEVICE_ID, "max_bytes": "big"},
            {"device_id": DEVICE_ID, "resend_from": "1"},
            {"device_id": "someone else", "ops": []},
        ]
    else:
        shapes += [
            {"token": 1, "device_id": new_ulid(), "public_key": "x", "name": "n", "proof": "p"},
            {"token": "AAAA", "device_id": "not an id", "public_key": "x", "name": "n",
             "proof": "p"},
            {"token": "AAAA", "device_id": new_ulid(), "public_key": "!!", "name": "n",
             "proof": "p"},
        ]
    for shape in shapes:
        raw = json.dumps(shape).encode()
        problem(post(path, raw, **{"content-type": "application/json"}), 400)
        problem(post(path, zlib.compress(raw), **{"content-encoding": "deflate"}), 400)


def test_ops_of_the_wrong_shape_are_refused_not_ignored() -> None:
    """An op the server cannot even number (not an object, no integer dev_seq) makes the whole
    request malformed: a 400, not a 200 that silently drops it and everything after it."""
    first = applied_dev_seq(ENGINE, DEVICE_ID) + 1
    for ops in ([1], ["op"], [None], [{"dev_seq": str(first)}], [{"dev_seq": None}],
                [{"dev_seq": float(first)}], [[first]]):
        raw = deflated({"device_id": DEVICE_ID, "ops": ops})
        problem(post(SYNC_PATH, raw, **{"content-encoding": "deflate"}), 400)
    assert applied_dev_seq(ENGINE, DEVICE_ID) == first - 1


@PATHS
def test_lying_or_huge_content_lengths_are_refused(path: str) -> None:
    for declared in (str(MAX_BODY + 1), "99999999999999999999", "-1", "abc", "1e9"):
        response = CLIENT.post(path, content=b"{}", headers={"content-length": declared,
                                                             "authorization": signed(b"{}")})
        problem(response, 400, 413)
    # no length declared, and more than MAX_BODY sent in chunks
    body = iter([b"[" + b"0," * (1 << 19)] * 5)
    problem(CLIENT.post(path, content=body, headers={"authorization": signed(b"")}), 413)


def test_unsigned_and_badly_signed_sync_requests_are_refused() -> None:
    raw = deflated({"device_id": DEVICE_ID, "ops": []})
    for header in ("", "Basic abc", "Liudong", "Liudong d=,t=,n=,s=", "Liudong d=x,t=1,n=y,s=!!",
                   f"Liudong d={DEVICE_ID},t=notanumber,n=abc,s=abc",
                   f"Liudong d={DEVICE_ID},t=1,n=abc,s=" + "A" * 86,
                   f"Liudong d={DEVICE_ID},t={int(time.time())},n={'n' * 200},s=" + "A" * 86,
                   "Liudong " + ",".join(["d=x"] * 1000)):
        problem(post(SYNC_PATH, raw, authorization=header, **{"content-encoding": "deflate"}),
                400, 401)
    # well signed, but by a device that does not exist, or at a time far away
    private, _ = new_keypair()
    stranger = new_ulid()
    raw_stranger = deflated({"device_id": stranger, "ops": []})
    problem(post(SYNC_PATH, raw_stranger, authorization=signed(raw_stranger, stranger, private),
                 **{"content-encoding": "deflate"}), 401)
    problem(post(SYNC_PATH, raw, authorization=signed(raw, created=10**12),
                 **{"content-encoding": "deflate"}), 401)


def test_lone_surrogates_are_refused_not_a_server_error() -> None:
    """JSON may spell a lone UTF-16 surrogate (``"\\ud800"``), and Python's JSON reader also
    lets one through raw; no such string can be stored or sent back as UTF-8."""
    for spelled in ('"\\ud800"', '"a\\udfffb"', '"\ud800"'):
        first = applied_dev_seq(ENGINE, DEVICE_ID) + 1
        text = (f'{{"device_id": "{DEVICE_ID}", "ops": [{{"dev_seq": {first}, '
                f'"rec_id": "{new_ulid()}", "type": "member", "set": {{"name": {spelled}, '
                f'"home_org_id": "{BRANCH}"}}, "hlc": "{"0" * 16}"}}]}}')
        raw = text.encode("utf-8", "surrogatepass")
        response = post(SYNC_PATH, raw, **{"content-type": "application/json"})
        if response.status_code == 200:
            assert [r["dev_seq"] for r in response.json()["rejected"]] == [first]
        else:
            problem(response, 400)


# -- values at the edges, on both databases ------------------------------------------------------

HUGE = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]


def enrolled(county: County) -> tuple[str, bytes]:
    org = county.org("城关村党支部", "branch")
    body, private = enroll_body(county.engine, org)
    response = county.http.post(ENROLL_PATH, content=json.dumps(body).encode())
    assert response.status_code == 200, response.text
    return body["device_id"], private


def sync_post(county: County, device: tuple[str, bytes], body: dict[str, Any]) -> Any:
    raw = deflated({"device_id": device[0], **body})
    return county.http.post(SYNC_PATH, content=raw, headers={
        "authorization": signed(raw, *device), "content-encoding": "deflate"})


def test_huge_numbers_are_refused_or_taken_never_a_server_error(county: County) -> None:
    """Integers past what a BIGINT column holds must not reach the database."""
    device = enrolled(county)
    for number in HUGE:
        for body in ({"cursor": number}, {"max_bytes": number}, {"resend_from": number},
                     {"ops": [{"dev_seq": number, "rec_id": new_ulid(), "type": "member",
                               "set": {"name": "张三"}, "hlc": "0" * 16}]},
                     {"ops": [{"dev_seq": 1, "rec_id": new_ulid(), "type": "member",
                               "set": {"name": "张三"}, "base": {"name": number},
                               "hlc": "0" * 16}]}):
            response = sync_post(county, device, body)
            assert response.status_code < 500, (body, response.text[:300])
            if response.status_code != 200:
                problem(response, 400, 413)
    # and the device still syncs
    assert sync_post(county, device, {"ops": []}).status_code == 200


def test_odd_strings_never_reach_the_database_as_server_errors(county: County) -> None:
    """NUL characters (PostgreSQL text cannot hold them) and over-long values, in every string
    the server stores from a request: op fields kept in the audit trail, enrollment fields."""
    device = enrolled(county)
    seq = 1
    for odd in ("\x00", "a\x00b", "x" * 5000, "\ud7ff\ue000"):
        for op in ({"rec_id": odd, "type": "member", "set": {"name": "张三"}},
                   {"rec_id": new_ulid(), "type": odd, "set": {"name": "张三"}},
                   {"rec_id": new_ulid(), "type": "member", "set": {"name": odd}},
                   {"rec_id": new_ulid(), "type": "member", "set": {odd: 1}}):
            response = sync_post(county, device, {"ops": [{"dev_seq": seq, "hlc": "0" * 16,
                                                           **op}]})
            assert response.status_code < 500, (op, response.text[:300])
            if response.status_code == 200:
                assert response.json()["acked"] == seq
                seq += 1
        org = county.org("东关村党支部", "branch")
        for field in ("name", "store_id"):
            body, _ = enroll_body(county.engine, org, **{field: odd})
            response = county.http.post(ENROLL_PATH, content=json.dumps(body).encode())
            assert response.status_code < 500, (field, odd[:10], response.text[:300])
            if response.status_code != 200:
                problem(response, 400)
        body, _ = enroll_body(county.engine, org, store_id=12345)
        response = county.http.post(ENROLL_PATH, content=json.dumps(body).encode())
        assert response.status_code < 500, response.text[:300]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                    | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@st.composite
def field_ops(draw: Any) -> dict[str, Any]:
    """An op with a sound envelope and arbitrary values for real fields of a real type."""
    type_name = draw(st.sampled_from(sorted(TYPES)))
    names = sorted(TYPES[type_name].by_name)
    values = draw(st.dictionaries(st.sampled_from(names), JSON, max_size=4))
    return {"rec_id": new_ulid(), "type": type_name, "set": values, "hlc": "0" * 16,
            "deleted": draw(st.booleans())}


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(field_ops(), min_size=1, max_size=5))
def test_arbitrary_field_values_are_applied_or_rejected_never_a_server_error(
        ops: list[dict[str, Any]]) -> None:
    """Past the envelope, every value of every field goes through coercion and validation:
    each op is applied or answered in ``rejected``, and the request is never a 5xx."""
    first = applied_dev_seq(ENGINE, DEVICE_ID) + 1
    numbered = [{**op, "dev_seq": first + i} for i, op in enumerate(ops)]
    raw = deflated({"device_id": DEVICE_ID, "ops": numbered})
    response = post(SYNC_PATH, raw, **{"content-encoding": "deflate"})
    assert response.status_code == 200, response.text[:500]
    answer = response.json()
    answered = [a[0] for a in answer["applied"]] + [r["dev_seq"] for r in answer["rejected"]]
    assert sorted(answered) == [op["dev_seq"] for op in numbered]
