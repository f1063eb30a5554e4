"""Compaction beside commits (DESIGN §2.4, FORMAT.md "Compaction"): a part of ``Store``, kept
apart for size. Commits go on while a compaction seals the next snapshot; only its last step,
carrying the entries committed meanwhile and switching generations, holds the store's lock."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING

from . import sealed
from .fsutil import fsync_dir, shred
from .ids import Hlc, ulid_bytes

if TYPE_CHECKING:
    from .store import Store

# Acknowledged ops are kept this long, to be sent again to a county server restored from an
# older backup (DESIGN §3.2).
OP_RETENTION_MS = 400 * 24 * 3600 * 1000


SWITCH_INTERVAL = 0.001  # seconds, while a background compaction runs


class Abandon(Exception):
    """A background compaction gave up (the store is closing, or an entry renumbered ops)."""


def run(self: Store, background: bool = False) -> None:
    """One compaction; in the background, with the interpreter's switch interval shortened
    while it runs, so that a committing thread coming back from its fsync gets the interpreter
    within a millisecond rather than five (commit p99, bench/bench_store.py)."""
    if not background:
        _run(self, background)
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL))
    try:
        _run(self, background)
    finally:
        sys.setswitchinterval(before)


def _run(self: Store, background: bool) -> None:
    """One compaction, beside commits (FORMAT.md, "Compaction"):

    1. under the lock: freeze a view of the state (a shallow copy) and start keeping the
       entries committed from now on;
    2. without it: prune old acknowledged ops from the view, seal it as
       ``snapshot-<g+1>.tmp``; write ``journal-<g+1>.tmp`` anchored to it, carrying the
       entries kept so far; fsync, rename it to ``journal-<g+1>``, fsync the directory;
    3. under the lock, briefly: carry the entries committed since, fsync; rename the
       snapshot into place, switch the writer; fsync the directory;
    4. shred generation g.

    Until the snapshot's rename generation g is the newest and holds every commit (a
    ``journal-<g+1>`` without its snapshot is removed on open); from it on, generation
    g+1 does. Caller holds ``self._compacting``."""
    store_id = ulid_bytes(self._slots.store_id)
    with self._mutex:
        self._check_writable()
        frozen = self.state.freeze()
        horizon = Hlc.parse(self._hlc.now())[0] - OP_RETENTION_MS
        old, gen = self.gen, self.gen + 1
        self._carry, self._carry_broken = [], False
    snap_tmp = self.path / f"snapshot-{gen:08d}.tmp"
    journal_tmp = self.path / f"journal-{gen:08d}.tmp"
    journal = self._file("journal", gen)
    writer: sealed.JournalWriter | None = None
    switched = False

    def pause() -> None:
        if background:
            if self._abandon:
                raise Abandon("closing")
            time.sleep(0)  # let a committing thread have the interpreter

    try:
        cut = frozen.prune_ops(horizon)
        anchor = sealed.seal_snapshot(snap_tmp, self._master, store_id, self._slots.key_id,
                                      gen, frozen.pieces(), pause)
        writer = sealed.start_journal(journal_tmp, self._master, store_id,
                                      self._slots.key_id, gen, anchor)
        carry = self._carry
        done = 0
        while done < len(carry):
            writer.append(carry[done], sync=False)
            done += 1
        writer.sync()
        writer.publish(journal)
        with self._mutex:
            if self._abandon and background:
                raise Abandon("closing")
            if self._carry_broken:
                raise Abandon("ops were renumbered during the compaction")
            self._check_writable()
            if done < len(carry):
                while done < len(carry):
                    writer.append(carry[done], sync=False)
                    done += 1
                writer.sync()
            os.replace(snap_tmp, self._file("snapshot", gen))
            # the point of no return: generation g+1 is the store from here on
            switched = True
            assert self._writer is not None
            self._writer.close()
            self._writer, self.gen, self._anchor = writer, gen, anchor
            self._carry = None
            self.snapshot_size = self._file("snapshot").stat().st_size
            if cut is not None:
                self.state.log.drop_below(cut, frozen.log)
            try:
                fsync_dir(self.path)
            except OSError as exc:
                self._failed = f"compaction: {exc}"
                raise
    except BaseException:
        with self._mutex:
            self._carry = None
        if not switched:
            if writer is not None:
                writer.close()
            for leftover in (snap_tmp, journal_tmp, journal):
                with contextlib.suppress(OSError):
                    if leftover.exists():
                        shred(leftover)
        raise
    self._remove_stale({"snapshot": [old], "journal": [old]})

