"""The worklist kept between calls (store/rules.py, DESIGN §2.3, §7).

Most of a worklist's items are about one member each (MEMBER_KINDS) and depend only on that
member's own records, the day, the settings and the organizations. So the worklist of a state
is kept: its member items sorted per kind, and per member the items it holds. A later call
reads the state's member log (store/indexes.py) from where the kept worklist left off and
works out again the items of the members whose records changed since, putting them in place
by bisection; everything else (the meetings' rule, transfer letters, tasks, sync) is worked
out again each time, it is small, with the meetings read once until one changes. A change of
the day, the settings, the own organization or any organization (``shared_revision``) starts
from nothing, and so does a reader left too far behind by the log.

The result of a call is kept too, until the state changes (``revision``, the metadata). Keys
are read before the work: a commit meanwhile moves them, and the next call catches up.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    import datetime as dt

    from .rules import Item, Thresholds, _Rules
    from .state import State

# the kinds of items about one member, each depending on that member's records only
MEMBER_KINDS = ("report_overdue", "lost_contact", "contact_due", "no_contact_person",
                "probation_due", "appraisal_missing", "transfer_suggested")
BY_SINCE = itemgetter(4, 2)  # the order within a kind: since, then rec_id


class Kept:
    """One state's worklist, kept. Calls are serialized (two screens may ask at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[Any, ...] | None = None  # what ``result`` was worked out from
        self.result: tuple[Item, ...] = ()
        self.context: tuple[Any, ...] | None = None  # what the member items depend on
        self.position = -1  # how far into the member log they are up to date
        self.by_kind: dict[str, list[Item]] = {}  # member items, sorted by BY_SINCE
        self.items_of: dict[str, list[Item]] = {}  # member → its member items
        self.meetings: tuple[tuple[int, str], MeetingIndex] | None = None

    def worklist(self, state: State, today: dt.date, cfg: Thresholds,
                 rules_class: Callable[..., _Rules]) -> tuple[Item, ...]:
        from .rules import KINDS

        with self.lock:
            ix = state.ix
            meta = dict(state.meta)  # one copy read by the rules: a commit replaces the state's
            own = meta.get("own_org_id")
            key = (ix.revision, today, cfg, own, meta.get("synced_at"), meta.get("rejected"))
            if key == self.key:
                return self.result
            context = (ix.shared_revision, today, cfg, own)
            base, log = ix.member_log
            end = base + len(log)
            rules = rules_class(state, meta, today, cfg)
            try:
                if context != self.context or self.position < base:
                    rules.member_part(None)
                    self._start(rules.found)
                elif end > self.position:
                    changed = set(log[self.position - base:end - base])
                    rules.member_part(changed)
                    self._replace(changed, rules.found)
            except BaseException:
                self.context = None  # half brought up to date: the next call starts over
                raise
            self.context, self.position = context, end
            rules.meetings = self._meetings(state, rules.window)
            rules.shared_part()
            out: list[Item] = []
            for kind in KINDS:
                if kind in self.by_kind:
                    out += self.by_kind[kind]
                else:
                    out += sorted(rules.found[kind], key=BY_SINCE)
            self.key, self.result = key, tuple(out)
            return self.result

    def _meetings(self, state: State, window: str) -> MeetingIndex:
        key = (state.ix.meeting_revision, window)  # read before the meetings are
        if self.meetings is None or self.meetings[0] != key:
            self.meetings = (key, MeetingIndex(state, window))
        return self.meetings[1]

    def _start(self, found: dict[str, list[Item]]) -> None:
        self.by_kind, self.items_of = {}, {}
        for kind in MEMBER_KINDS:
            items = found[kind]
            items.sort(key=BY_SINCE)  # stable: one member's items keep the order they came in
            self.by_kind[kind] = items
            for item in items:
                self.items_of.setdefault(item.member_id, []).append(item)  # type: ignore[arg-type]

    def _replace(self, changed: set[str], found: dict[str, list[Item]]) -> None:
        """The items of ``changed`` out, their new ones (``found``) in. Two members never share
        a (since, rec_id) within a kind (rec_id is the member's or its flow's), so a member's
        new items sort after nothing but its own, as in ``_start``."""
        for member_id in changed:
            for item in self.items_of.pop(member_id, ()):
                items = self.by_kind[item.kind]
                i = bisect.bisect_left(items, BY_SINCE(item), key=BY_SINCE)
                while items[i] is not item:
                    i += 1
                del items[i]
        for kind in MEMBER_KINDS:
            items = self.by_kind[kind]
            for item in found[kind]:
                bisect.insort_right(items, item, key=BY_SINCE)
                self.items_of.setdefault(item.member_id, []).append(item)  # type: ignore[arg-type]


class MeetingIndex:
    """The meetings, read once: whether an organization's records cover the window of the
    no-attendance rule (a meeting held on or before the window's start and one inside it), and
    who attended any meeting inside it (attendance anywhere counts, M-3.2). Kept while no
    meeting changes and the window stays (``Kept._meetings``): read-only once made."""

    def __init__(self, state: State, window: str) -> None:
        self.window = window
        self.first: dict[str, str] = {}
        self.held: dict[str, int] = {}
        self.present: set[str] = set()  # who attended any meeting inside the window
        before: dict[str, list[dict[str, Any]]] = {}
        for doc in state.live("meeting"):
            org, held = doc.get("org_id"), doc.get("held_on") or ""
            if not org or not held:
                continue
            if held < self.first.get(org, "9999"):
                self.first[org] = held
            if held >= window:
                self.held[org] = self.held.get(org, 0) + 1
                self.present.update(doc.get("attendee_ids") or ())
            else:
                before.setdefault(org, []).append(doc)
        self.covered = {org for org, first in self.first.items()
                        if first <= window and self.held.get(org)}
        # per organization, its meetings before the window, the latest first: (held, who came)
        self._before = {org: [(d["held_on"], frozenset(d.get("attendee_ids") or ())) for d in
                              sorted(docs, key=lambda d: d["held_on"], reverse=True)]
                        for org, docs in before.items()}

    def last_attended(self, org: str, members: set[str]) -> dict[str, str]:
        """member → the last meeting of ``org`` before the window the member attended."""
        out: dict[str, str] = {}
        pending = set(members)
        for held, came in self._before.get(org, ()):  # the latest first
            if not pending:
                break
            for mid in pending & came:
                out[mid] = held
            pending.difference_update(out)
        return out


_ALL: WeakKeyDictionary[State, Kept] = WeakKeyDictionary()
_ALL_LOCK = threading.Lock()


def kept_for(state: State) -> Kept:
    with _ALL_LOCK:
        kept = _ALL.get(state)
        if kept is None:
            kept = _ALL[state] = Kept()
        return kept
