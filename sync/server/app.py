"""The county server's HTTP interface (FastAPI; OpenAPI at /openapi.json, docs at /docs)."""

from __future__ import annotations

import json
import sys
import time
import zlib
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from store import __version__

from ..protocol import (
    AUTH_HEADER,
    ENROLL_PATH,
    SYNC_PATH,
    parse_authorization,
)
from . import admin, db, intake
from .county import Refused
from .identity import SignAnswers, identity
from .requests import serve_sync

VERSION = __version__


class Op(BaseModel):
    """One record's field changes, as the device committed it (DESIGN §3.1)."""

    device_id: str
    dev_seq: int = Field(ge=1)
    rec_id: str
    type: str
    set: dict[str, Any]
    base: dict[str, int] = {}
    hlc: str
    deleted: bool = False


class SyncRequest(BaseModel):
    """Sent compressed (``Content-Encoding: deflate``) and signed (``Authorization``)."""

    device_id: str
    epoch: str | None = None
    cursor: int = Field(0, ge=0)
    ops: list[Op] = []
    max_bytes: int = Field(262144, ge=1024)
    resend_from: int | None = None
    head: int | None = Field(None, ge=0, description="the device's last dev_seq")


class WireRecord(BaseModel):
    id: str
    t: str
    f: dict[str, Any]
    v: int | dict[str, int]
    c: str
    u: str | None = Field(None, description="updated HLC; absent when equal to c")
    d: int | None = None


class Rejected(BaseModel):
    dev_seq: int
    rec_id: str | None
    type: str | None
    reason: str
    field: str | None = Field(None, description="the field that caused the refusal")
    zh: str
    en: str
    set: dict[str, Any] | None


class Rewound(BaseModel):
    """The device went back in time: its ops from ``from`` differ from those applied."""

    from_: int = Field(alias="from")
    acked: int


class SyncResponse(BaseModel):
    epoch: str
    acked: int
    applied: list[list[int]]
    rejected: list[Rejected]
    conflicts: list[str]
    changes: list[WireRecord]
    removes: list[str]
    cursor: int
    more: bool
    need_from: int | None = None
    reset: bool | None = None
    rewound: Rewound | None = None
    aliases: dict[str, str] | None = Field(
        None, description="ids the device made → the county's records they stand for")


class EnrollRequest(BaseModel):
    token: str
    device_id: str
    public_key: str = Field(description="raw Ed25519 public key, base64url")
    name: str
    store_id: str | None = None
    proof: str = Field(description="Ed25519 signature of the enrollment proof, base64url")


class EnrollResponse(BaseModel):
    device_id: str
    org_id: str
    org_name: str | None
    org_kind: str | None
    epoch: str
    server_time: int
    orgs: list[WireRecord]


class Problem(BaseModel):
    error: str
    zh: str
    en: str


NESTED_SCHEMAS: dict[str, Any] = {}  # models request bodies refer to: components/schemas


def _body_schema(model: type[BaseModel], auth: bool) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    NESTED_SCHEMAS.update(schema.pop("$defs", {}))
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}}}}
    if auth:
        extra["parameters"] = [{"in": "header", "name": "Authorization", "required": True,
                                "schema": {"type": "string"},
                                "description": "Liudong d=<device>,t=<unix time>,n=<nonce>,"
                                               "s=<Ed25519 signature>"}]
    return extra


PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 410, 413)}


SYNC_THREADS = 8


def create_app(engine: Engine) -> FastAPI:
    limiter: list[anyio.CapacityLimiter] = []  # made on first use, inside the event loop

    def sync_slots() -> anyio.CapacityLimiter:
        # Few sync requests run at once: each waits on the database or on one write lock
        # (db.write), and a lock holder must not queue for the GIL behind dozens of threads.
        if not limiter:
            limiter.append(anyio.CapacityLimiter(SYNC_THREADS))
        return limiter[0]

    app = FastAPI(title="Liudong county server", version=VERSION,
                  description="Sync for the register of mobile party members (流动党员). Every "
                              "answer carries a `Liudong-Signature` by the server's identity key, "
                              "bound to the request's `Liudong-Nonce`.")
    app.add_middleware(SignAnswers, identity=identity(engine))

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def read_body(request: Request, limit: int) -> bytes:
        """The body as received, at most ``limit`` bytes, neither inflated nor parsed here: on
        the event loop only bytes are moved (DESIGN §3.4). The time it may take is bounded by
        the server (sync/server/serving.py)."""
        declared = request.headers.get("content-length")
        if declared is not None and (not (declared.isascii() and declared.isdigit())
                                     or int(declared) > limit):  # ("²".isdigit() holds)
            raise intake.too_large()
        raw = bytearray()
        try:
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > limit:
                    raise intake.too_large()
        except ClientDisconnect:
            raise intake.unreadable("the body was cut short") from None
        return bytes(raw)

    def respond(request: Request, data: Any) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        if "deflate" in request.headers.get("accept-encoding", "") and len(body) > 200:
            # level 9 where it pays: an initial sync's pages shrink by 7 % for ~3 ms each
            level = 9 if len(body) > 16384 else 6
            return Response(zlib.compress(body, level), media_type="application/json",
                            headers={"content-encoding": "deflate"})
        return Response(body, media_type="application/json")

    @app.get("/v1/health", summary="Is the server up; its epoch and time")
    async def health() -> dict[str, Any]:
        epoch = await run_in_threadpool(_epoch, engine)
        return {"ok": True, "version": VERSION, "epoch": epoch, "time": int(time.time())}

    @app.post(ENROLL_PATH, summary="Enroll a device with a one-time code",
              response_model=EnrollResponse, responses=PROBLEMS,
              openapi_extra=_body_schema(EnrollRequest, auth=False))
    async def enroll(request: Request) -> Response:
        raw = await read_body(request, intake.MAX_ENROLL_BODY)
        result = await run_in_threadpool(_enroll, engine, raw,
                                         request.headers.get("content-encoding"))
        return respond(request, result)

    @app.post(SYNC_PATH, summary="Send ops, receive changes: one round trip",
              response_model=SyncResponse, responses=PROBLEMS,
              openapi_extra=_body_schema(SyncRequest, auth=True))
    async def sync(request: Request) -> Response:
        signed = parse_authorization(request.headers.get(AUTH_HEADER))
        if signed is None:
            raise Refused(401, "unsigned", "请求未签名", "the request is not signed")
        raw = await read_body(request, intake.MAX_SYNC_BODY)
        # In a worker thread: the signature on these bytes, then inflating and parsing them.
        result = await anyio.to_thread.run_sync(
            serve_sync, engine, signed, raw, request.headers.get("content-encoding"),
            request.headers.get("user-agent", "")[:40], limiter=sync_slots())
        return respond(request, result)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()  # FastAPI caches it: the update below happens once
        doc.setdefault("components", {}).setdefault("schemas", {}).update(NESTED_SCHEMAS)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def tune_threads() -> None:
    """Writers queue on one lock (db.write) and talk to the database while holding it; a holder
    back from the database waits for the GIL up to this interval (5 ms by default) while other
    request threads compute, and every queued writer waits with it."""
    sys.setswitchinterval(0.0005)


def _enroll(engine: Engine, raw: bytes, encoding: str | None) -> dict[str, Any]:
    """An enrollment, in a worker thread: the body inflated and parsed within small bounds
    (it is a stranger's), then the code and proof checked."""
    result = admin.enroll(engine, intake.read_json(raw, encoding, intake.MAX_ENROLL_BODY))
    result["orgs"] = _org_chain(engine, result["org_id"])
    return result


def _epoch(engine: Engine) -> str | None:
    with db.read(engine) as conn:
        return db.get_meta(conn, "epoch")


def _org_chain(engine: Engine, org_id: str) -> list[dict[str, Any]]:
    """The device's organization and those above it, so a device can use them at once."""
    from sqlalchemy import select

    from .tx import rec_of

    with db.read(engine) as conn:
        ancestors = select(db.org_closure.c.ancestor_id).where(db.org_closure.c.org_id == org_id)
        rows = conn.execute(select(db.records).where(db.records.c.rec_id.in_(ancestors))).all()
    return [rec_of(r).wire() for r in rows]
