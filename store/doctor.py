"""``Store.doctor``: re-read and verify every byte of every file, and check the state's
invariants (kept apart from store/store.py for size)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import sealed
from .crypto import KdfParams
from .errors import LiudongError
from .ids import ulid_bytes
from .keyslots import KeySlots
from .search import member_keys
from .state import State

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class Finding:
    """One line of ``doctor``'s report."""

    level: str  # ok | warn | error
    zh: str
    en: str


def doctor(self: Store) -> list[Finding]:
    out: list[Finding] = []
    store_id = ulid_bytes(self.store_id)

    def ok(zh: str, en: str) -> None:
        out.append(Finding("ok", zh, en))

    try:
        slots, document = KeySlots.load(self.path / "keyslots")
        slots.verify(self._master, document)
        kinds = [s.kind for s in slots.slots]
        if slots.needs_rewrite:
            out.append(Finding(
                "warn", "密钥文件的两份副本不一致（旧格式、崩溃或损坏）：下次打开存储时重写",
                "the two copies in keyslots differ (an old format, a crash or damage): "
                "they are rewritten the next time the store opens"))
        elif self.keyslots_rewritten:
            ok("打开时已重写密钥文件（" + ("转换为定长格式" if self.keyslots_rewritten == "migrated"
                                    else "修复了一份过期或损坏的副本") + "）",
               "keyslots was rewritten on open (" + (
                   "converted to the fixed-size format" if self.keyslots_rewritten == "migrated"
                   else "a stale or damaged copy repaired") + ")")
        ok(f"密钥文件完好：{kinds.count('passphrase')} 个口令槽，{kinds.count('recovery')} 个恢复密钥槽",
           f"keyslots intact: {kinds.count('passphrase')} passphrase slot(s), "
           f"{kinds.count('recovery')} recovery slot(s)")
        for s in slots.slots:
            if s.kind == "passphrase":
                KdfParams.from_json(s.kdf)
        if "recovery" not in kinds:
            out.append(Finding("warn", "没有恢复密钥：忘记口令将无法打开存储",
                               "no recovery key: a forgotten passphrase locks the store for good"))
        snap = sealed.read_snapshot(self._file("snapshot"), self._master, store_id,
                                    self._slots.key_id)
        ok(f"快照 {self.gen} 完好（{snap.size} 字节）",
           f"snapshot {self.gen} intact ({snap.size} bytes)")
        found = sealed.read_journal(self._file("journal"), self._master, store_id,
                                    self._slots.key_id, self.gen, snap.anchor)
        if found.end != found.size:
            out.append(Finding("error", "日志末尾有未完成的写入（不应出现在打开的存储中）",
                               "journal ends in an unfinished write (unexpected while open)"))
        ok(f"日志完好：{found.seq} 帧，链条连续",
           f"journal intact: {found.seq} frame(s), chain unbroken")
        replay = State.from_bytes(snap.state)
        for raw in found.entries:
            replay.apply_entry(json.loads(raw))
        replay.upgrade()
        if replay.to_bytes() != self.state.to_bytes():
            out.append(Finding("error", "磁盘上的内容与内存中的不一致",
                               "what is on disk differs from what is in memory"))
        else:
            ok("磁盘内容与内存一致", "disk and memory agree")
    except LiudongError as exc:
        out.append(Finding("error", exc.zh, exc.en))
        return out
    if self.dropped_tail:
        out.append(Finding("warn",
                           f"打开时丢弃了 {self.dropped_tail} 字节未完成的写入（崩溃时未确认的操作）",
                           f"{self.dropped_tail} bytes of an unfinished write were dropped on "
                           "open (an operation a crash interrupted before it was confirmed)"))
    out.extend(_check_invariants(self))
    return out

def _check_invariants(self: Store) -> list[Finding]:
    from .schema import TYPES

    out: list[Finding] = []
    dangling = 0
    count = 0
    for type_name, rtype in TYPES.items():
        for doc in self.state.live(type_name):
            count += 1
            for f in rtype.fields:
                value = doc.get(f.name)
                if f.kind in ("ref", "refs") and value is not None:
                    for ref in value if f.kind == "refs" else [value]:
                        if self.state.get(ref, include_deleted=True) is None:
                            dangling += 1
    if dangling:
        out.append(Finding("warn", f"{dangling} 处引用指向不存在的记录",
                           f"{dangling} reference(s) point at missing records"))
    stale = sum(1 for doc in self.state.live("member")
                if self.state.search.get(doc["id"]) != member_keys(doc))
    stale += len(set(self.state.search) - {d["id"] for d in self.state.live("member")})
    if stale:
        out.append(Finding("error", f"{stale} 名党员的检索索引过期",
                           f"search keys of {stale} member(s) are stale"))
    seqs = [op["dev_seq"] for op in self.state.ops]
    if seqs and (any(a >= b for a, b in itertools.pairwise(seqs))
                 or seqs[-1] > self.state.meta["dev_seq"]):
        out.append(Finding("error", "操作序号错乱", "op sequence is out of order"))
    pending = self.state.pending_count()
    out.append(Finding("ok", f"共 {count} 条记录，{pending} 个操作待同步",
                       f"{count} record(s), {pending} op(s) waiting to sync"))
    return out

