"""Background sync (DESIGN §4): the county is reached from a thread, never from the interface's.

``SyncWorker`` runs ``Device(store).sync()`` in a Textual thread worker when the app opens the
store, on a timer (every minute while the county answers; 15 s, 30 s, … up to 5 min while it
does not), a few seconds after local edits, and on ``f5``. Only the worker thread waits on the
network; the interface keeps reading the store (its commits are serialized inside ``Store``).

What a sync ends in reaches the interface through ``app.call_later``, which is thread-safe and,
unlike ``call_from_thread``, does not wait for the interface: ``stop()``, called by the app on
its own thread before it closes the store, waits for the sync thread, which must not in turn be
waiting for the interface. The sync itself runs in a daemon thread that the Textual worker
watches, so that a county answering very late cannot hold up the app's exit.

Offline is the normal state of a branch laptop: the status line turns yellow and no toast is
shown. A real error (a certificate that is not the pinned one, a revoked device, a refusal) is
told once, with the same message as ``liudong sync``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from store.errors import LiudongError
from tui.output import t

INTERVAL = 60.0
"""Seconds between syncs while the county answers."""
BACKOFF = (15.0, 30.0, 60.0, 120.0, 240.0, 300.0)
"""Seconds before the next try after 1, 2, … failures in a row (then 5 minutes)."""
DEBOUNCE = 5.0
"""Seconds of quiet after a local edit before it is sent."""
DEBOUNCE_MAX = 20.0
"""An edit waits at most this long however busily the user keeps typing."""
POLL = 1.0
"""How often the worker looks for local edits and counts (cheap: a few meta lookups)."""
STOP_WAIT = 5.0
"""Seconds ``stop()`` waits for a running sync before cutting its connection."""
ATTEMPTS = 4
"""HTTP attempts within one sync: the worker retries later on its own."""


class Cancelled(Exception):
    """The app is closing: the sync stops at its next wait (nothing half-done is kept)."""


def enrolled(store: Any) -> bool:
    meta = store.meta
    return bool(meta.get("server_url") and meta.get("private_key"))


def open_conflicts(store: Any) -> list[Any]:
    return [c for c in store.live("conflict") if c.get("status") == "open"]


def counts(store: Any) -> dict[str, Any]:
    """What the status line counts, read from the store (any thread)."""
    synced = store.meta.get("synced_at")
    return {"pending": store.state.pending_count(),
            "conflicts": len(open_conflicts(store)),
            "rejected": len(store.meta.get("rejected") or ()),
            "last_sync": int(synced) if isinstance(synced, (int, float)) else None}


def summary(report: Any) -> str:
    """A sync's outcome in a few words, as ``liudong sync`` words it."""
    parts = []
    if report.sent:
        parts.append(t(f"发送 {report.sent} 个操作", f"sent {report.sent} op(s)"))
    if report.received:
        parts.append(t(f"收到 {report.received} 条更新", f"received {report.received} update(s)"))
    if report.removed:
        parts.append(t(f"移出 {report.removed} 条", f"removed {report.removed}"))
    return t("，", ", ").join(parts)


def start_sync(app: Any) -> None:
    """Called once the store is open: sync in the background if it is enrolled, else just show
    what the status line shows."""
    store = app.store
    if store is None:
        return
    if app.sync_worker is not None:
        app.sync_worker.stop()
        app.sync_worker = None
    if not enrolled(store):
        app.set_sync_status(enrolled=False, phase="local", message="", **counts(store))
        return
    app.sync_worker = SyncWorker(app)
    app.sync_worker.start()


@dataclass
class Outcome:
    """How one sync ended, handed from the worker thread to the interface."""

    phase: str  # synced | offline | error | revoked | cancelled
    report: Any = None
    error: LiudongError | None = None
    counts: dict[str, Any] = field(default_factory=dict)


class SyncWorker:
    """Schedules syncs for one app and runs them one at a time in a thread worker."""

    def __init__(self, app: Any, *, interval: float | None = None,
                 backoff: tuple[float, ...] | None = None, debounce: float | None = None,
                 attempts: int | None = None) -> None:
        self.app = app
        # the module's values, read now (tests shorten them)
        self.interval = INTERVAL if interval is None else interval
        self.backoff = BACKOFF if backoff is None else backoff
        self.debounce = DEBOUNCE if debounce is None else debounce
        self.attempts = ATTEMPTS if attempts is None else attempts
        self.failures = 0
        """Syncs in a row that did not reach the county (offline or error)."""
        self.completed = 0
        """Syncs finished (whatever their outcome), for tests and the sync screen."""
        self.last_error: LiudongError | None = None
        self.next_at: float | None = None
        """When the next timed sync is due (``time.time()``), for the sync screen."""
        self._running = False  # a sync is launched and has not reported back (interface thread)
        self._again = False  # f5 or an edit came while a sync ran: one more after it
        self._stopped = False
        self._revoked = False
        self._timer: Any = None
        self._debounce: Any = None
        self._debounce_since: float | None = None
        self._poll: Any = None
        self._seen: tuple[Any, ...] | None = None
        self._dev_seq = 0
        self._toasted: str | None = None  # the error last told, so a retry does not repeat it
        # shared with the worker thread
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._active = 0  # threads inside a sync (two overlap briefly when one is queued)

    # -- interface thread ------------------------------------------------------------------------
    def start(self) -> None:
        store = self.app.store
        self._dev_seq = int(store.meta.get("dev_seq", 0))
        self.app.set_sync_status(enrolled=True, phase="local", message="", **counts(store))
        self._poll = self.app.set_interval(POLL, self._check_store)
        self.app.watch(self.app, "revision", self._on_revision, init=False)
        self.sync_now()

    @property
    def running(self) -> bool:
        return self._running

    def sync_now(self) -> None:
        """Sync at once; if a sync is running, one more right after it."""
        if self._stopped or self._revoked:
            return
        if self._running:
            self._again = True
            return
        self._stop_timers()
        self._launch()

    def stop(self, wait: float | None = None) -> None:
        """No more syncs. A sync waiting between attempts stops at once; one waiting for an
        answer is given ``wait`` seconds (``STOP_WAIT``) to finish, then left behind: its
        thread is a daemon, so a slow link cannot hold the app's exit, and the store, closed
        next, refuses the commit it might still attempt (``Store.close`` waits for a commit in
        progress). Nothing is lost either way: what was not committed is sent again."""
        self._stopped = True
        self._stop_timers()
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
        with self._lock:
            self._cancel.set()
            active = self._active
        if active:
            self._idle.wait(STOP_WAIT if wait is None else wait)

    def _stop_timers(self) -> None:
        for timer in (self._timer, self._debounce):
            if timer is not None:
                timer.stop()
        self._timer = self._debounce = None
        self._debounce_since = None
        self.next_at = None

    def _launch(self) -> None:
        if self.app.store is None:
            return
        self._running = True
        self.app.set_sync_status(phase="syncing", message="")
        self.app.run_worker(self._work, name="sync", group="sync", thread=True, exclusive=True,
                            exit_on_error=False,
                            description=t("与县级服务器同步", "sync with the county server"))

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.next_at = time.time() + delay
        self._timer = self.app.set_timer(delay, self._timed, name="sync-timer")

    def _timed(self) -> None:
        self._timer = None
        self.next_at = None
        self.sync_now()

    def _on_revision(self, _revision: Any = None) -> None:
        self._check_store()

    def _check_store(self) -> None:
        """After a commit (or on the poll): refresh the counts; a local edit is sent soon."""
        store = self.app.store
        if self._stopped or store is None:
            return
        meta = store.meta
        seen = (meta.get("dev_seq"), meta.get("acked_dev_seq"), len(meta.get("rejected") or ()),
                meta.get("synced_at"), store.state.pending_count())
        if seen == self._seen:
            return
        self._seen = seen
        self.app.set_sync_status(**counts(store))
        dev_seq = int(meta.get("dev_seq", 0))
        if dev_seq > self._dev_seq:
            self._dev_seq = dev_seq
            self._edited()
        else:
            self._dev_seq = dev_seq

    def _edited(self) -> None:
        """A local edit: sync after a few quiet seconds, if the county answers (while offline
        the backoff timer goes on; an edit does not make it try more often)."""
        if self._revoked or self.app.sync_status.phase in ("offline", "error"):
            return
        now = time.monotonic()
        if self._debounce is not None:
            if self._debounce_since is not None and now - self._debounce_since > DEBOUNCE_MAX:
                return  # the one already set fires soon enough
            self._debounce.stop()
        else:
            self._debounce_since = now
        self._debounce = self.app.set_timer(self.debounce, self._debounced, name="sync-edit")

    def _debounced(self) -> None:
        self._debounce = None
        self._debounce_since = None
        self.sync_now()

    def _finished(self, outcome: Outcome) -> None:
        """Back on the interface thread: show the outcome and set the next sync."""
        self._running = False
        self.completed += 1
        if self._stopped or outcome.phase == "cancelled":
            return
        app = self.app
        if outcome.counts:
            self._seen = None  # counted again on the next poll
        if outcome.phase == "synced":
            report = outcome.report
            self.failures = 0
            self.last_error = None
            self._toasted = None
            app.set_sync_status(phase="synced", message=summary(report), **outcome.counts)
            self._tell_report(report)
            delay = self.interval
        elif outcome.phase == "offline":
            self.failures += 1
            self.last_error = outcome.error
            app.set_sync_status(phase="offline", message=t(
                "数据已保存在本机，联网后自动同步", "everything is kept here; syncs when the link is back"),
                **outcome.counts)
            delay = self.backoff[min(self.failures, len(self.backoff)) - 1]
        else:
            self.failures += 1
            self.last_error = outcome.error
            error = outcome.error
            assert error is not None
            app.set_sync_status(phase="error", message=t(error.zh, error.en), **outcome.counts)
            text = error.message()
            if text != self._toasted:
                self._toasted = text
                app.notify(text, title=t("同步出错", "Sync failed"), severity="error",
                           timeout=15, markup=False)
            if outcome.phase == "revoked":
                self._revoked = True
                return
            delay = self.backoff[min(self.failures, len(self.backoff)) - 1]
        if self._again:
            self._again = False
            self._launch()
            return
        self._schedule(delay)

    def _tell_report(self, report: Any) -> None:
        """What ``liudong sync`` tells besides the counts: refusals and a rewound store."""
        app = self.app
        if report.rejected:
            n = len(report.rejected)
            app.notify(t(f"县级服务器拒绝了 {n} 项修改（未保存在县里）：按 6 查看",
                         f"The county server refused {n} change(s) (not kept there): press 6"),
                       severity="warning", timeout=10, markup=False)
        if report.rewound:
            acked, moved = report.rewound
            app.notify(t(f"注意：本机存储曾退回到较早的副本（或日志末尾丢失）。县级服务器已有本机到第 {acked} 号的操作；"
                         f"本机未发送的 {moved} 个操作已重新编号并发送，服务器上本机此前的记录已取回，没有丢失。",
                         f"Note: this store had gone back to an older copy (or lost the end of "
                         f"its journal). The county server holds this laptop's ops up to "
                         f"#{acked}; the {moved} op(s) not sent yet were renumbered and sent, and "
                         "what this laptop had sent before came back from the server: nothing "
                         "was lost."), severity="warning", timeout=20, markup=False)

    # -- worker thread ---------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        """The client's wait between attempts, cut short when the app closes."""
        if self._cancel.wait(seconds):
            raise Cancelled()

    def _work(self) -> None:
        """The Textual worker: runs the sync in a daemon thread and waits for it, but returns
        as soon as the app closes (Textual's worker threads are joined at exit)."""
        with self._lock:
            if self._cancel.is_set():
                return
            self._active += 1
            self._idle.clear()
        done = threading.Event()
        result: list[Outcome] = []

        def run() -> None:
            try:
                result.append(self._sync())
            finally:
                with self._lock:
                    self._active -= 1
                    if not self._active:
                        self._idle.set()
                done.set()

        threading.Thread(target=run, name="liudong-sync", daemon=True).start()
        while not done.wait(0.1):
            if self._cancel.is_set():
                return
        if result and not self._cancel.is_set():
            # thread-safe and does not wait: never blocks on a closing interface
            self.app.call_later(self._finished, result[0])

    def _sync(self) -> Outcome:
        from sync.client import Device
        from sync.errors import Offline, Revoked

        store = self.app.store
        if store is None:
            return Outcome("cancelled")
        device = Device(store, attempts=self.attempts, sleep=self._sleep)
        try:
            outcome = Outcome("synced", report=device.sync())
        except Cancelled:
            return Outcome("cancelled")
        except Offline as exc:
            outcome = Outcome("offline", error=exc)
        except Revoked as exc:
            outcome = Outcome("revoked", error=exc)
        except LiudongError as exc:
            outcome = Outcome("error", error=exc)
        except Exception as exc:  # shown to the user, never a traceback
            if self._cancel.is_set():
                return Outcome("cancelled")  # the store closed under a late answer
            outcome = Outcome("error", error=LiudongError(
                f"同步时出现意外错误（{type(exc).__name__}: {exc}）；数据已保存在本机",
                f"unexpected error while syncing ({type(exc).__name__}: {exc}); everything "
                "is kept on this computer"))
        finally:
            try:
                device.close()
            except Exception:  # the link is gone either way
                pass
        try:
            outcome.counts = counts(store)
        except Exception:  # the store closed meanwhile: counted on the next poll
            outcome.counts = {}
        return outcome
