"""Child process of the key-slot crash test: changes the passphrase again and again.

Each half of ``keyslots`` is written in 512-byte pieces with a pause between them, as a disk
that tears a write at sector boundaries would leave it, so that a kill can land inside a half.

Arguments: store path, index of the current passphrase (see ``passphrase``).
Protocol on stdout, one line each, flushed:
  B <n>   about to change to passphrase n (may or may not survive a kill)
  W       about to write one half of the file
  A <n>   the change to passphrase n returned: it must survive
"""

from __future__ import annotations

import sys
import time

from store import TEST_KDF, Store
from store import keyslots as keyslots_mod
from store.fsutil import pwrite_all


def passphrase(n: int) -> str:
    return f"passphrase number {n}"


def torn_pwrite(fd: int, data: bytes, offset: int) -> None:
    out.write("W\n")
    out.flush()
    for start in range(0, len(data), 512):
        pwrite_all(fd, data[start:start + 512], offset + start)
        time.sleep(0.0003)


out = sys.stdout
keyslots_mod.pwrite_all = torn_pwrite  # type: ignore[assignment]
path, n = sys.argv[1], int(sys.argv[2])
store = Store.open(path, passphrase(n))  # an old-format file is converted here: may be killed too
out.write("O\n")
out.flush()
while True:
    out.write(f"B {n + 1}\n")
    out.flush()
    store.change_passphrase(passphrase(n + 1), kdf=TEST_KDF)
    n += 1
    out.write(f"A {n}\n")
    out.flush()
