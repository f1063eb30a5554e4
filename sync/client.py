"""The device side of sync: enrollment and the sync loop (DESIGN §3.2, §3.4).

Each round trip sends up to 64 KB of unsent ops and brings back the changes in the device's
scope; the answer is applied in one local commit, and rounds repeat while there is more. Any
round may be cut at any byte: ops carry ``(device_id, dev_seq)``, so a resent request changes
nothing on the server, and nothing local changes until an answer arrives whole.

Takes an ``httpx.Client``: tests give it one that talks to the real FastAPI app in process.
"""

from __future__ import annotations

import contextlib
import json
import platform
import random
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from store import Store, __version__
from store.errors import LiudongError
from store.workflows import acknowledge_appraisals

from .errors import NotEnrolled, Offline, PinMismatch, Refused, Revoked, SyncError, Unverified
from .protocol import (
    ANSWER_HEADER,
    DEFAULT_MAX_BYTES,
    ENROLL_PATH,
    MAX_OPS_BYTES,
    NONCE_HEADER,
    SYNC_PATH,
    Asked,
    b64u,
    cert_fingerprint,
    encode_body,
    enroll_proof,
    new_keypair,
    new_nonce,
    parse_code,
    request_digest,
    sign_request,
    unb64u,
    verify_answer,
)

CLIENT_VERSION = f"liudong/{__version__}"
# Fit for a 2G link: 64 KB at 64 kbit/s takes 8 s, so reads get far longer than that.
TIMEOUT = httpx.Timeout(connect=20.0, read=90.0, write=90.0, pool=20.0)
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


@dataclass
class SyncReport:
    requests: int = 0
    sent: int = 0
    received: int = 0
    removed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0  # open conflicts on this device after the sync
    reset: bool = False
    # the store had gone back in time (restored from a copy, or a lost journal tail): the
    # server's last op of this device, and how many of this store's ops were renumbered
    rewound: tuple[int, int] | None = None
    linked: int = 0  # records the county already had, which this device's now stand for


def _default_sleep(seconds: float) -> None:
    time.sleep(seconds)


class Device:
    """One store's link to its county server."""

    def __init__(self, store: Store, http: httpx.Client | None = None, *,
                 attempts: int = 8, sleep: Callable[[float], None] = _default_sleep,
                 rng: random.Random | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self._http = http
        self._own_http = http is None
        self.attempts = attempts
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.max_bytes = max_bytes

    # -- HTTP --------------------------------------------------------------------------------
    def _client(self, base_url: str | None = None, tls_pem: str | None = None) -> httpx.Client:
        """The HTTP client: for ``base_url`` trusting ``tls_pem`` (while enrolling), else for
        the server and the certificate this store was enrolled with."""
        if self._http is None:
            url = base_url or self.store.meta.get("server_url")
            if not url:
                raise NotEnrolled()
            pem = tls_pem or self.store.meta.get("tls_pem")
            verify: Any = True
            if pem:
                # Trust exactly the certificate pinned at enrollment, whatever its name says.
                context = ssl.create_default_context(cadata=pem)
                context.check_hostname = False
                verify = context
            self._http = httpx.Client(base_url=url, timeout=TIMEOUT, verify=verify,
                                      headers={"user-agent": CLIENT_VERSION,
                                               "accept-encoding": "deflate"})
        return self._http

    def close(self) -> None:
        if self._own_http and self._http is not None:
            self._http.close()
            self._http = None

    def _post(self, path: str, data: Any, signed: bool, server_key: str,
              base_url: str | None = None, may_erase: bool = False,
              tls_pem: str | None = None) -> Any:
        """POST with retries (exponential backoff with jitter); the answer's JSON.

        Nothing in an answer is acted on unless it verifies with ``server_key``, the key the
        enrollment code carried, and is bound to this very request (DESIGN §3.4): an answer from
        anything else on the link is treated as no answer. Only a verified revocation, and only
        during a sync (``may_erase``), erases this store's keys."""
        client = self._client(base_url, tls_pem)
        body = encode_body(data)
        url = str(client.base_url) if client.base_url else (base_url or "")
        key = unb64u(server_key)
        last = "?"
        refused_connections = 0
        backoffs = 0  # waits so far: each doubles, up to a minute
        at_once = False  # the next attempt goes without waiting
        dropped_once = False
        for attempt in range(self.attempts):
            if refused_connections >= 3:
                break  # nobody listens there: say so now rather than after minutes
            if attempt and not at_once:
                self.sleep(min(60.0, 2.0 ** backoffs) * self.rng.uniform(0.5, 1.0))
                backoffs += 1
            at_once = False
            nonce = new_nonce()
            headers = {"content-type": "application/json", "content-encoding": "deflate",
                       NONCE_HEADER: nonce}
            if signed:
                created = int(time.time() + float(self.store.meta.get("clock_offset", 0)))
                headers["authorization"] = sign_request(
                    unb64u(self.store.meta["private_key"]), self.store.device_id, "POST", path,
                    body, created)
            try:
                status, answer = _exchange(client, path, body, headers)
            except httpx.ConnectError as exc:
                if isinstance(exc.__cause__, ssl.SSLError) or "CERTIFICATE" in str(exc):
                    raise PinMismatch(url) from None
                last = "ConnectError"
                refused_connections += 1
                continue
            except (httpx.RequestError, AnswerTooLarge) as exc:
                # a dropped link, a timeout, an answer too large to be ours: ask again; the
                # server applies each op once. A link that drops one exchange often carries the
                # next: the first drop is retried at once, later ones back off.
                last = type(exc).__name__
                at_once, dropped_once = not dropped_once, True
                continue
            if status in RETRYABLE_STATUS:
                last = f"HTTP {status}"
                continue
            asked = Asked(nonce, "POST", path, request_digest(headers.get("authorization"), body))
            if not verify_answer(key, answer.signature, asked, status, answer.encoding,
                                 answer.raw):
                # cut short on the way, or not from the county server at all: not acted on
                last = "unverified answer"
                at_once, dropped_once = not dropped_once, True
                continue
            try:
                payload = decode_answer(answer.raw, answer.encoding)
            except ValueError:
                last = "bad answer"
                continue
            if status == 200:
                return payload
            problem = payload if isinstance(payload, dict) else {}
            code = str(problem.get("error", status))
            if code == "replay":
                # Our request reached the server twice (a network that repeats) and we got the
                # second answer: ask again under a fresh nonce; each op still applies once.
                last = "replay"
                at_once = True
                continue
            if code == "stale" and isinstance(problem.get("server_time"), int):
                # This computer's clock is off: sign with the server's time from now on.
                self.store.set_meta(clock_offset=problem["server_time"] - time.time())
                at_once = True
                continue
            if code == "revoked" and may_erase:
                self.store.erase_keys()
                raise Revoked()
            raise Refused(code, str(problem.get("zh", code)), str(problem.get("en", code)))
        if last == "unverified answer":
            raise Unverified(url)
        raise Offline(url, last)

    # -- enrollment --------------------------------------------------------------------------
    def enroll(self, code: str, server: str | None = None, name: str | None = None,
               ) -> dict[str, Any]:
        """Enroll with a one-time code: a key pair is made, its private half kept inside the
        encrypted store; records made before enrollment go up with the first sync. Nothing an
        enrollment hears can erase anything: a forged code can at worst lead nowhere.

        A device enrolled before answers were signed enrolls again with a new code for its own
        organization: it keeps its key and its records and learns the server's key."""
        meta = self.store.meta
        refresh = bool(meta.get("server_url")) and not meta.get("server_key")
        if meta.get("server_url") and not refresh:
            raise SyncError("本设备已登记，无需再次登记", "this device is enrolled already")
        try:
            parsed = parse_code(code)
        except ValueError:
            raise SyncError("登记码有误或是旧版本的登记码，请核对或向县里申请新的登记码",
                            "the enrollment code is garbled or from an older version: check "
                            "it, or ask the county for a new one") from None
        url = (server or parsed.url).rstrip("/")
        if refresh:
            pending = {"token": parsed.token, "private_key": meta["private_key"],
                       "public_key": meta["public_key"]}
        else:
            pending = meta.get("enroll_pending")
            if not pending or pending.get("token") != parsed.token:
                # Keep the key before asking: if the answer is lost, asking again uses it.
                private, public = new_keypair()
                pending = {"token": parsed.token, "private_key": b64u(private),
                           "public_key": b64u(public)}
                self.store.set_meta(enroll_pending=pending)
        if refresh and _host(url) != _host(meta["server_url"]) and not server:
            raise SyncError(f"登记码指向另一台服务器（{_host(url)}），而本机登记在 "
                            f"{_host(meta['server_url'])}：如确是县里换了服务器，请用 --server 给出其地址",
                            f"the code names another server ({_host(url)}) than the one this "
                            f"laptop is enrolled with ({_host(meta['server_url'])}): if the "
                            "county really moved it, give its address with --server")
        tls_pem = None  # kept only once a verified answer says the enrollment holds
        if url.startswith("https://") and parsed.fingerprint:
            tls_pem = self._pin(url, parsed.fingerprint)
        proof = _sign_raw(unb64u(pending["private_key"]),
                          enroll_proof(parsed.token, self.store.device_id, pending["public_key"]))
        answer = self._post(ENROLL_PATH, {
            "token": parsed.token, "device_id": self.store.device_id,
            "public_key": pending["public_key"], "name": name or platform.node() or "laptop",
            "store_id": self.store.store_id, "proof": proof}, signed=False,
            server_key=parsed.server_key, base_url=url, tls_pem=tls_pem)
        if not isinstance(answer, dict) or not isinstance(answer.get("org_id"), str) or \
                not isinstance(answer.get("server_time"), int):
            raise Refused("bad_answer", "服务器的回应格式有误", "the server's answer is malformed")
        if refresh:
            if answer["org_id"] != meta.get("own_org_id"):
                raise Refused("other_org", "登记码属于另一个组织：请向县里申请本组织的登记码",
                              "the code is for another organization: ask the county for one "
                              "for this laptop's own")
            self.store.set_meta(server_url=url, tls_pem=tls_pem, server_key=parsed.server_key)
            return answer
        with self.store.locked():  # the interface may have committed since: read it now
            self._commit_enrollment(answer, url, tls_pem, parsed.server_key, pending)
        return answer

    def _commit_enrollment(self, answer: dict[str, Any], url: str, tls_pem: str | None,
                           server_key: str, pending: dict[str, Any]) -> None:
        meta = self.store.meta
        self.store.commit({"k": "enroll", "old_org_id": meta.get("own_org_id"),
                           "org_id": answer["org_id"], "orgs": answer.get("orgs", []),
                           "meta": {"server_url": url, "tls_pem": tls_pem,
                                    "server_key": server_key,
                                    "private_key": pending["private_key"],
                                    "public_key": pending["public_key"],
                                    "own_org_id": answer["org_id"], "epoch": answer["epoch"],
                                    "cursor": 0, "enroll_pending": None,
                                    "clock_offset": answer["server_time"] - time.time()
                                    if abs(answer["server_time"] - time.time()) > 60 else None}})

    def _pin(self, url: str, fingerprint: str) -> str:
        parts = urlsplit(url)
        try:
            pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443),
                                             timeout=20)
        except OSError as exc:
            raise Offline(url, type(exc).__name__) from None
        if cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem)) != fingerprint.lower():
            raise PinMismatch(url)
        return pem

    # -- sync --------------------------------------------------------------------------------
    def sync(self, max_rounds: int = 100_000) -> SyncReport:
        """Send every unsent op and bring the device up to date with its scope."""
        if not self.store.meta.get("server_url") and self._http is None:
            raise NotEnrolled()
        if not self.store.meta.get("private_key"):
            raise NotEnrolled()
        if not self.store.meta.get("server_key"):
            raise SyncError("本设备登记时县级服务器的回应尚未签名，无法核验：请向县里申请新的登记码，"
                            "运行 liudong enroll 重新登记（本机数据不受影响）",
                            "this device enrolled before the county server signed its answers, "
                            "which cannot be verified: ask the county for a new code and run "
                            "liudong enroll again (nothing on this computer is lost)")
        report = SyncReport()
        for _ in range(max_rounds):
            # The store's lock is held to read the outbox and to commit the answer, never
            # across the exchange: the interface goes on committing meanwhile (its new ops stay
            # in the outbox; the answer's changes are replayed under them at commit).
            with self.store.locked():
                request, sent = self._next_request()
                before_acked = int(self.store.meta.get("acked_dev_seq", 0))
            answer = self._post(SYNC_PATH, request, signed=True,
                                server_key=self.store.meta["server_key"], may_erase=True)
            report.requests += 1
            self._check(answer)
            if isinstance(answer.get("rewound"), dict):
                self._rewind(answer["rewound"], report)
                continue
            aliases = answer.get("aliases") or {}
            with self.store.locked():
                rejected = [self._describe(r) for r in answer["rejected"] if isinstance(r, dict)]
                self.store.commit({
                    "k": "sync", "acked": answer["acked"], "applied": answer["applied"],
                    "aliases": aliases, "changes": answer["changes"],
                    "removes": answer["removes"], "rejected": rejected,
                    "cursor": answer["cursor"], "epoch": answer["epoch"],
                    "synced_at": int(time.time())})
                noted = 0
                if answer["changes"]:
                    with contextlib.suppress(LiudongError):  # tried again at the next sync
                        noted = acknowledge_appraisals(self.store)  # M-4.2: sent next round
                outbox_empty = not self.store.state.pending_count()
            report.sent += max(0, min(answer["acked"], before_acked + sent) - before_acked)
            report.received += len(answer["changes"])
            report.removed += len(answer["removes"])
            report.rejected += rejected
            report.linked += len(aliases)
            report.reset = report.reset or bool(answer.get("reset"))
            if not answer["more"] and outbox_empty:
                break
            if not answer["more"] and not sent and not noted and \
                    answer["acked"] >= before_acked:
                break  # nothing moves: do not loop (the next sync tries again)
        report.conflicts = sum(1 for c in self.store.live("conflict")
                               if c.get("status") == "open")
        return report

    def _rewind(self, rewound: dict[str, Any], report: SyncReport) -> None:
        """The server holds this device's ops up to ``acked`` and, from ``from`` on, other ops
        than this store: the store went back to an older copy. Its own ops from there are
        renumbered above the server's and sent; what the server holds of the lost timeline comes
        back with the pull, since this copy's cursor is as old as the copy (DESIGN §3.2)."""
        first, acked = rewound.get("from"), rewound.get("acked")
        if not (isinstance(first, int) and isinstance(acked, int) and 1 <= first <= acked + 1
                and acked >= int(self.store.meta.get("acked_dev_seq", 0))):
            raise Refused("bad_answer", "服务器的回应格式有误", "the server's answer is malformed")
        with self.store.locked():
            moved = max(0, int(self.store.meta["dev_seq"]) - first + 1)
            self.store.commit({"k": "rewind", "from": first, "acked": acked})
        report.rewound = (acked, moved)

    def _describe(self, rejected: dict[str, Any]) -> dict[str, Any]:
        """A refusal with the record it is about named as people know it (the member's name),
        kept with it: the record itself may leave this store with the same answer."""
        doc = self.store.get(str(rejected.get("rec_id")), include_deleted=True)
        changes = rejected.get("set") if isinstance(rejected.get("set"), dict) else {}
        member = doc if doc is not None and doc.get("type") == "member" else (
            self.store.get(str((doc or changes).get("member_id")), include_deleted=True))
        title = (member or {}).get("name") or changes.get("name")
        return {**rejected, "title": str(title) if title else None}

    def _next_request(self) -> tuple[dict[str, Any], int]:
        meta = self.store.meta
        batch: list[dict[str, Any]] = []
        size = 0
        for op in self.store.state.outbox:
            cost = len(json.dumps(op, ensure_ascii=False)) + 1
            if batch and size + cost > MAX_OPS_BYTES:
                break
            batch.append(op)
            size += cost
        request: dict[str, Any] = {"device_id": self.store.device_id, "epoch": meta.get("epoch"),
                                   "cursor": int(meta.get("cursor", 0)), "ops": batch,
                                   "max_bytes": self.max_bytes, "head": int(meta["dev_seq"])}
        acked = int(meta.get("acked_dev_seq", 0))
        if batch and batch[0]["dev_seq"] > acked + 1:
            # The server lost ops this device no longer keeps: say so, send what is left.
            request["resend_from"] = batch[0]["dev_seq"]
        return request, len(batch)

    @staticmethod
    def _check(answer: Any) -> None:
        keys = ("epoch", "acked", "applied", "changes", "removes", "rejected", "cursor", "more")
        if not isinstance(answer, dict) or any(k not in answer for k in keys):
            raise Refused("bad_answer", "服务器的回应格式有误", "the server's answer is malformed")


def _sign_raw(private_key: bytes, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return b64u(Ed25519PrivateKey.from_private_bytes(private_key).sign(message))


# -- reading an answer, bounded -------------------------------------------------------------------
# An answer is read as it comes, never past these bounds, and inflated only once verified: a
# rogue answer of 1 MB that inflates to 1 GiB once drove `liudong sync` to 9.5 GB of memory.
MAX_ANSWER = 8 * 1024 * 1024  # bytes of one answer as sent (compressed)
MAX_INFLATED = 32 * 1024 * 1024  # its JSON once inflated (answers are pages of ≤ 4 MiB)
DEADLINE = 300.0  # seconds one exchange may take in all, however slowly it trickles


class AnswerTooLarge(Exception):
    pass


@dataclass
class Answer:
    raw: bytes
    signature: str | None
    encoding: str | None


def _exchange(client: httpx.Client, path: str, body: bytes,
              headers: dict[str, str]) -> tuple[int, Answer]:
    started = time.monotonic()
    with client.stream("POST", path, content=body, headers=headers) as response:
        raw = bytearray()
        for chunk in response.iter_raw():
            raw += chunk
            if len(raw) > MAX_ANSWER:
                raise AnswerTooLarge(f"more than {MAX_ANSWER} bytes")
            if time.monotonic() - started > DEADLINE:
                raise httpx.ReadTimeout("the answer took too long", request=response.request)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) != len(raw):
            # the link closed early: a network fault like any other, not a forgery
            raise httpx.RemoteProtocolError("the answer was cut short", request=response.request)
        return response.status_code, Answer(bytes(raw), response.headers.get(ANSWER_HEADER),
                                            response.headers.get("content-encoding"))


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def decode_answer(raw: bytes, encoding: str | None) -> Any:
    """A verified answer's JSON, inflated with a bound."""
    if encoding and encoding.lower() == "deflate":
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(raw, MAX_INFLATED)
        except zlib.error as exc:
            raise ValueError(f"bad compressed answer: {exc}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("answer too large or cut short")
    elif encoding and encoding.lower() not in ("identity", ""):
        raise ValueError(f"unsupported content encoding {encoding!r}")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeError, RecursionError):
        raise ValueError("the answer is not JSON") from None
