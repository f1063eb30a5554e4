"""How `liudong serve` runs uvicorn: bounded time and connections for strangers (DESIGN §3.4).

uvicorn's HTTP/1.1 protocol (h11) gives a connection all the time in the world to send its
request's head: the keep-alive timer runs only once a response is sent, and only until the next
byte arrives. Nor does it bound connections: ``limit_concurrency`` answers 503 once a head has
arrived, counting every open connection, so connections that trickle their heads would turn away
exactly the requests that do not. And each connection holds a file descriptor, from the moment it
is accepted, through the TLS handshake: 250 connections trickling their heads filled a server's
256 and made ``/v1/health`` time out for 70 s (new connections could not even be accepted).

So here:

- a request's head must arrive within ``HEADER_TIMEOUT`` of the connection being accepted, TLS
  handshake included (on a connection kept alive between requests, of its first byte);
- its body within ``BODY_TIMEOUT`` of its head (a sync request is tens of KB: seconds on 2G);
- a connection idle between requests is closed after ``KEEP_ALIVE``;
- at most ``max_connections`` connections, below what the process may open (its soft limit is
  raised towards the hard one first). A connection beyond the cap makes room by closing the one
  that has waited longest for its head — in its handshake, idle, or trickling — or, failing
  that, the one that has been sending its body longest; a request read whole is never cut off.
  A client that sends its request at once, as the laptops do, is served while strangers trickle.

To count and close connections still in their TLS handshake, TLS is set up here, on the
connection as accepted (``loop.start_tls``), rather than by asyncio's server before the protocol
sees the connection; uvicorn still makes the TLS context from ``ssl_certfile``/``ssl_keyfile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import is_ssl

HEADER_TIMEOUT = 10.0  # seconds for a request's head, TLS handshake included
BODY_TIMEOUT = 60.0  # seconds for a request's body, once its head is in
KEEP_ALIVE = 30  # seconds a connection may stay idle between requests
MAX_CONNECTIONS = 1000
FD_RESERVE = 128  # descriptors kept for the database's connections and files
BACKLOG = 128  # connections waiting to be accepted; asyncio accepts as many at a time


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for a request's head and body, TLS set up on the
    accepted connection, and a cap on connections that closes those waiting longest for their
    head first."""

    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None  # "head", "body", or None (read whole, or gone)
        self._deadline: asyncio.TimerHandle | None = None
        self._queues = _queues(self.server_state)
        self._raw: asyncio.BaseTransport | None = None  # the TCP connection, TLS not yet up
        self._made = False  # uvicorn's protocol has its transport
        self._lost = False
        self._early: list[bytes] = []  # what TLS let through before that
        self._setup: asyncio.Task[None] | None = None

    # -- uvicorn's protocol, followed --------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        tls = self.config.ssl
        if tls is not None and self._raw is None and not self._made and not is_ssl(transport):
            self._accepted(transport, tls)
            return
        if self._raw is None:  # plain HTTP, or TLS by asyncio: counted from here
            self._queues["all"][self] = None
        self._made = True
        super().connection_made(transport)
        self._follow(fresh=True)
        if self._raw is None:
            self._check_cap()
        self._raw = None

    def data_received(self, data: bytes) -> None:
        if not self._made:  # decrypted before start_tls returned: kept for uvicorn
            self._early.append(data)
            return
        super().data_received(data)
        self._follow(fresh=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(fresh=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if not self._made:
            self._lost = True
            return
        super().connection_lost(exc)

    # -- TLS on the accepted connection --------------------------------------------------------
    def _accepted(self, raw: asyncio.Transport, tls: ssl.SSLContext) -> None:
        raw.pause_reading()  # the client's hello waits for start_tls
        self._raw = raw
        self._queues["all"][self] = None
        self._enter("head")
        self._arm(self.header_timeout)
        self._check_cap()
        if not raw.is_closing():
            self._setup = self.loop.create_task(self._handshake(raw, tls))

    async def _handshake(self, raw: asyncio.Transport, tls: ssl.SSLContext) -> None:
        try:
            transport = await self.loop.start_tls(raw, self, tls, server_side=True,
                                                  ssl_handshake_timeout=self.header_timeout)
        except (Exception, asyncio.CancelledError):  # reset, bad hello, timed out, shut down
            transport = None
        if transport is None or self._lost or raw.is_closing():
            self._forget()
            if not raw.is_closing():
                raw.abort()
            return
        self.connection_made(transport)  # type: ignore[arg-type]
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    # -- deadlines and the cap -----------------------------------------------------------------
    def _follow(self, fresh: bool) -> None:
        """Where the request on this connection stands; ``fresh``: bytes just arrived (or the
        connection was just made), which starts the clock for a head."""
        if self.transport is None or self.transport.is_closing():
            self._leave()
            return
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase != self._phase:
            self._leave()
            self._enter(phase)
            if phase == "body":
                self._arm(self.body_timeout)
            elif phase == "head" and fresh:
                self._arm(self.header_timeout)
        elif phase == "head" and fresh and self._deadline is None:
            # kept alive, idle until now (uvicorn's keep-alive timer ran, and stopped at this
            # byte): the head has from here
            self._arm(self.header_timeout)

    def _enter(self, phase: str | None) -> None:
        self._phase = phase
        if phase is not None:
            self._queues[phase][self] = None  # newest last

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.call_later(seconds, self._expire, self._phase)

    def _leave(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._phase is not None:
            self._queues[self._phase].pop(self, None)
            self._phase = None

    def _forget(self) -> None:
        self._leave()
        self._queues["all"].pop(self, None)
        self._queues["dropping"].pop(self, None)

    def _expire(self, phase: str | None) -> None:
        self._deadline = None
        if self._phase == phase:
            self._drop()

    def _drop(self) -> None:
        self._leave()
        transport = self._raw if self._raw is not None else self.transport
        if transport is not None and not transport.is_closing():
            self._queues["dropping"][self] = None
            transport.abort()  # type: ignore[attr-defined]

    def _check_cap(self) -> None:
        if len(self._queues["all"]) - len(self._queues["dropping"]) <= self.max_connections:
            return
        for phase in ("head", "body"):
            victim = next((p for p in self._queues[phase] if p is not self), None)
            if victim is not None:
                victim._drop()
                return
        self._drop()  # every other connection has a request in hand: this one goes


def _queues(state: Any) -> dict[str, dict[BoundedH11Protocol, None]]:
    """Per server, oldest first: every connection; those waiting for a head; those sending a
    body; those closed whose loss is yet to be reported."""
    found = getattr(state, "liudong_queues", None)
    if found is None:
        found = {"all": {}, "head": {}, "body": {}, "dropping": {}}
        state.liudong_queues = found
    return found


class Server(uvicorn.Server):
    """uvicorn's server, listening on plain TCP: the protocol sets TLS up on each connection it
    accepts, with uvicorn's TLS context (``config.ssl``)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        tls = self.config.ssl
        self.config.ssl = None  # the listeners: plain TCP
        try:
            await super().startup(sockets=sockets)
        finally:
            self.config.ssl = tls  # what the protocol sets up on each connection


def make_server(app: Any, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                max_connections: int = MAX_CONNECTIONS) -> Server:
    """The server `liudong serve` runs (``server.run(sockets=…)``)."""
    cap, backlog = connection_cap(max_connections)
    protocol = type("LiudongH11Protocol", (BoundedH11Protocol,), {"max_connections": cap})
    config = uvicorn.Config(app, log_level="warning", ssl_certfile=ssl_certfile,
                            ssl_keyfile=ssl_keyfile, server_header=False, date_header=False,
                            http=protocol, ws="none", timeout_keep_alive=KEEP_ALIVE,
                            backlog=backlog)
    return Server(config)


def connection_cap(wanted: int = MAX_CONNECTIONS) -> tuple[int, int]:
    """(connections at most, listen backlog): ``wanted``, or fewer where the process may not
    open enough files (after raising its soft limit as far as it needs and may).

    asyncio accepts up to ``backlog`` connections at a time before any of them reaches the
    protocol that counts them, so a burst takes that many descriptors beyond the cap: the cap
    leaves room for it, and the backlog is small where descriptors are few."""
    try:
        import resource
    except ImportError:  # not POSIX
        return wanted, BACKLOG
    in_use = _open_files()
    needed = wanted + FD_RESERVE + BACKLOG + in_use
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted, BACKLOG
    backlog = max(8, min(BACKLOG, soft // 8))
    return max(8, soft - in_use - FD_RESERVE - backlog), backlog


def _open_files() -> int:
    for directory in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(directory))
    return 32
