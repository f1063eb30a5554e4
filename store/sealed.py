"""The two sealed file formats: chunked snapshots and the chained journal (see FORMAT.md).

Snapshot: a header, then chunks of AES-256-GCM under a per-file key; each chunk's associated
data binds the header digest, the chunk index and a last-chunk flag, so reordering, dropping or
truncating chunks is detected (KeePassXC's HMAC block stream, age's STREAM).

Journal: a header bound to its snapshot, then frames ``len ‖ seq ‖ crc ‖ nonce ‖ AEAD(ops)``;
each frame's associated data carries the previous frame's tag, so deleting, reordering or
splicing frames is detected. Only an incomplete final frame, the mark of a write that never
returned, is treated as uncommitted and dropped. A complete frame that fails is corruption.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import crypto
from .errors import Corrupted, StoreFailed
from .fsutil import fsync_dir, fsync_fd

VERSION = 1
SNAP_MAGIC = b"LDSNAP\x00\x01"
JRNL_MAGIC = b"LDJRNL\x00\x01"
SNAP_HEADER = struct.Struct(">8sH16sQ16s32sI")  # magic ver store_id gen key_id salt chunk_size
JRNL_HEADER = struct.Struct(">8sH16sQ16s32s16s")  # magic ver store_id gen key_id salt anchor
JRNL_SIZE = JRNL_HEADER.size + 16  # header and its MAC
CHUNK_LEN = struct.Struct(">I")
FRAME = struct.Struct(">IQI")  # ciphertext length, seq, crc32 of the two
CHUNK_SIZE = 1 << 20
MAX_CHUNK = 16 << 20
MAX_FRAME = 64 << 20
NONCE = crypto.NONCE_LEN


def snapshot_key(master: bytes, salt: bytes) -> bytes:
    return crypto.hkdf(master, b"liudong/snapshot/v1", salt=salt)


def journal_key(master: bytes, salt: bytes) -> bytes:
    return crypto.hkdf(master, b"liudong/journal/v1", salt=salt)


def journal_header_mac(master: bytes, header: bytes) -> bytes:
    """Seals the header of a journal that may hold no frame yet (frames bind it as well)."""
    return crypto.mac(crypto.hkdf(master, b"liudong/journal-header/v1"), header)[:16]


# -- snapshots ---------------------------------------------------------------------------------

def write_snapshot(path: Path, master: bytes, store_id: bytes, key_id: bytes, gen: int,
                   state: bytes | Iterable[bytes]) -> bytes:
    """Seal ``state`` into ``path`` atomically; returns the final chunk's tag (the journal's
    anchor)."""
    tmp = path.with_name(path.name + ".tmp")
    tag = seal_snapshot(tmp, master, store_id, key_id, gen, state)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return tag


def seal_snapshot(tmp: Path, master: bytes, store_id: bytes, key_id: bytes, gen: int,
                  state: bytes | Iterable[bytes], pause: Callable[[], None] | None = None,
                  ) -> bytes:
    """Seal ``state`` (bytes, or pieces of it) into ``tmp`` and fsync it, without renaming it
    into place; returns the final chunk's tag. The state is compressed and sealed as it comes,
    a chunk at a time, and ``pause`` runs between pieces (a compaction in the background yields
    there, and may raise to give up)."""
    salt = os.urandom(32)
    header = SNAP_HEADER.pack(SNAP_MAGIC, VERSION, store_id, gen, key_id, salt, CHUNK_SIZE)
    digest = hashlib.sha256(header).digest()
    key = snapshot_key(master, salt)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, header)
        index = 0
        tag = b""

        def seal(piece: bytes, last: bool) -> None:
            nonlocal index, tag
            nonce, sealed = crypto.seal(key, piece, digest + struct.pack(">QB", index, last))
            _write_all(fd, CHUNK_LEN.pack(len(sealed)) + nonce + sealed)
            tag = sealed[-crypto.TAG_LEN:]
            index += 1

        squeeze = zlib.compressobj(1)
        held = bytearray()
        for piece in [state] if isinstance(state, bytes) else state:
            held += squeeze.compress(piece)
            while len(held) > CHUNK_SIZE:  # keep one back: the last chunk is flagged
                seal(bytes(held[:CHUNK_SIZE]), False)
                del held[:CHUNK_SIZE]
            if pause is not None:
                pause()
        held += squeeze.flush()
        while len(held) > CHUNK_SIZE:
            seal(bytes(held[:CHUNK_SIZE]), False)
            del held[:CHUNK_SIZE]
        seal(bytes(held), True)
        fsync_fd(fd)
    finally:
        os.close(fd)
    return tag


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@dataclass
class SnapshotRead:
    state: bytes
    gen: int
    anchor: bytes  # tag of the final chunk
    size: int


def read_snapshot(path: Path, master: bytes, store_id: bytes, key_id: bytes) -> SnapshotRead:
    where = path.name
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < SNAP_HEADER.size:
        raise Corrupted(where, "文件头不完整", "has a truncated header")
    magic, version, sid, gen, kid, salt, chunk_size = SNAP_HEADER.unpack_from(data)
    if magic != SNAP_MAGIC:
        raise Corrupted(where, "不是快照文件", "is not a snapshot")
    if version != VERSION:
        raise Corrupted(where, f"版本不受支持：{version}", f"has unsupported version {version}")
    if sid != store_id:
        raise Corrupted(where, "属于另一个存储", "belongs to another store")
    if kid != key_id:
        raise Corrupted(where, "与密钥不匹配", "was sealed under another key")
    if not 0 < chunk_size <= MAX_CHUNK:
        raise Corrupted(where, "分块大小异常", "has an invalid chunk size")
    header = data[:SNAP_HEADER.size]
    digest = hashlib.sha256(header).digest()
    key = snapshot_key(master, salt)
    offset, index, pieces, tag, last = SNAP_HEADER.size, 0, [], b"", False
    while not last:
        if offset + CHUNK_LEN.size + NONCE > len(data):
            raise Corrupted(where, f"在第 {index} 块处被截断", f"is truncated at chunk {index}")
        (length,) = CHUNK_LEN.unpack_from(data, offset)
        offset += CHUNK_LEN.size
        if not crypto.TAG_LEN <= length <= chunk_size + crypto.TAG_LEN:
            raise Corrupted(where, f"第 {index} 块长度异常", f"has a bad length at chunk {index}")
        nonce = data[offset:offset + NONCE]
        sealed = data[offset + NONCE:offset + NONCE + length]
        offset += NONCE + length
        if len(sealed) != length:
            raise Corrupted(where, f"在第 {index} 块处被截断", f"is truncated at chunk {index}")
        last = offset == len(data)
        plain = crypto.open_sealed(key, nonce, sealed, digest + struct.pack(">QB", index, last))
        if plain is None:
            raise Corrupted(where, f"第 {index} 块校验失败", f"fails authentication at chunk {index}")
        pieces.append(plain)
        tag = sealed[-crypto.TAG_LEN:]
        index += 1
    try:
        state = zlib.decompress(b"".join(pieces))
    except zlib.error:
        raise Corrupted(where, "内容无法解压", "cannot be decompressed") from None
    return SnapshotRead(state, gen, tag, len(data))


# -- journal -----------------------------------------------------------------------------------

@dataclass
class JournalRead:
    entries: list[bytes]
    end: int  # offset after the last good frame
    size: int  # file size as found
    seq: int  # last frame's sequence number (0: none)
    tag: bytes  # last frame's tag, or the anchor


def create_journal(path: Path, master: bytes, store_id: bytes, key_id: bytes, gen: int,
                   anchor: bytes) -> None:
    """A new empty journal whose chain starts at the snapshot's final tag; atomic."""
    header = JRNL_HEADER.pack(JRNL_MAGIC, VERSION, store_id, gen, key_id, os.urandom(32), anchor)
    header += journal_header_mac(master, header)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, header)
        fsync_fd(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_journal(path: Path, master: bytes, store_id: bytes, key_id: bytes, gen: int,
                 anchor: bytes) -> JournalRead:
    where = path.name
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < JRNL_SIZE:
        raise Corrupted(where, "文件头不完整", "has a truncated header")
    magic, version, sid, jgen, kid, salt, janchor = JRNL_HEADER.unpack_from(data)
    if data[JRNL_HEADER.size:JRNL_SIZE] != journal_header_mac(master, data[:JRNL_HEADER.size]):
        raise Corrupted(where, "文件头校验失败", "header fails authentication")
    if magic != JRNL_MAGIC or version != VERSION:
        raise Corrupted(where, "不是日志文件或版本不受支持", "is not a journal of a known version")
    if sid != store_id or kid != key_id:
        raise Corrupted(where, "属于另一个存储或密钥", "belongs to another store or key")
    if jgen != gen or janchor != anchor:
        raise Corrupted(where, "与快照不匹配", "does not belong to the snapshot")
    digest = hashlib.sha256(data[:JRNL_HEADER.size]).digest()
    key = journal_key(master, salt)
    offset, seq, tag, entries = JRNL_SIZE, 0, anchor, []
    while offset < len(data):
        rest = len(data) - offset
        if rest < FRAME.size + NONCE or not any(data[offset:]):
            break  # an incomplete frame header or a zero-filled tail: a write that never returned
        length, fseq, crc = FRAME.unpack_from(data, offset)
        if crc != zlib.crc32(data[offset:offset + 12]):
            raise Corrupted(where, f"第 {seq + 1} 帧头校验失败", f"frame {seq + 1} header fails its check")
        if fseq != seq + 1:
            raise Corrupted(where, f"第 {seq + 1} 帧序号错乱", f"frame {seq + 1} is out of sequence")
        if not crypto.TAG_LEN <= length <= MAX_FRAME:
            raise Corrupted(where, f"第 {fseq} 帧长度异常", f"frame {fseq} has a bad length")
        if rest < FRAME.size + NONCE + length:
            break  # the frame's body was never fully written
        start = offset + FRAME.size
        nonce = data[start:start + NONCE]
        sealed = data[start + NONCE:start + NONCE + length]
        plain = crypto.open_sealed(key, nonce, sealed, digest + struct.pack(">Q", fseq) + tag)
        if plain is None:
            raise Corrupted(where, f"第 {fseq} 帧校验失败", f"frame {fseq} fails authentication")
        entries.append(plain)
        seq, tag = fseq, sealed[-crypto.TAG_LEN:]
        offset = start + NONCE + length
    return JournalRead(entries, offset, len(data), seq, tag)


class JournalWriter:
    """Appends frames. A frame is committed once ``append`` returns: written and fsynced."""

    def __init__(self, path: Path, master: bytes, found: JournalRead) -> None:
        self.path = path
        with open(path, "rb") as fh:
            header = fh.read(JRNL_HEADER.size)
        salt = JRNL_HEADER.unpack(header)[5]
        self._digest = hashlib.sha256(header).digest()
        self._key = journal_key(master, salt)
        self.seq, self.tag, self.size = found.seq, found.tag, found.end
        self._fd = os.open(path, os.O_WRONLY)
        if found.size != found.end:
            # Drop the torn tail left by a write that never returned, so the next frame follows
            # the last good one.
            os.ftruncate(self._fd, found.end)
            fsync_fd(self._fd)
        os.lseek(self._fd, 0, os.SEEK_END)

    def append(self, payload: bytes, sync: bool = True) -> None:
        """One frame; with ``sync`` (a commit) it is fdatasynced before this returns. Frames
        carried into a journal not yet in place are written without, then ``sync`` once."""
        seq = self.seq + 1
        nonce, sealed = crypto.seal(self._key, payload,
                                    self._digest + struct.pack(">Q", seq) + self.tag)
        head = struct.pack(">IQ", len(sealed), seq)
        frame = head + struct.pack(">I", zlib.crc32(head)) + nonce + sealed
        try:
            _write_all(self._fd, frame)
            if sync:
                fsync_fd(self._fd, data_only=True)
        except OSError as exc:
            # Put the file back as it was; if even that fails the store refuses more writes.
            try:
                os.ftruncate(self._fd, self.size)
                os.lseek(self._fd, self.size, os.SEEK_SET)
            except OSError:
                pass
            raise StoreFailed(str(exc)) from exc
        self.seq, self.tag = seq, sealed[-crypto.TAG_LEN:]
        self.size += len(frame)

    def sync(self) -> None:
        fsync_fd(self._fd)

    def publish(self, path: Path) -> None:
        """Rename the (synced) file to ``path`` and fsync the directory; appends go on."""
        os.replace(self.path, path)
        fsync_dir(path.parent)
        self.path = path

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def start_journal(tmp: Path, master: bytes, store_id: bytes, key_id: bytes, gen: int,
                  anchor: bytes) -> JournalWriter:
    """A new journal at ``tmp`` (header only, not yet in place), open for appending."""
    header = JRNL_HEADER.pack(JRNL_MAGIC, VERSION, store_id, gen, key_id, os.urandom(32), anchor)
    header += journal_header_mac(master, header)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, header)
    finally:
        os.close(fd)
    return JournalWriter(tmp, master, JournalRead([], len(header), len(header), 0, anchor))
