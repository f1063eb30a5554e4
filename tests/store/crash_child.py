"""Child process of the crash-safety test: commits records and reports each acknowledgement.

Protocol on stdout, one line each, flushed:
  B <kind> <rec_id> <value>   about to commit (may or may not survive a kill)
  A                            the commit above returned: it must survive

With a fourth argument ``slow``, every compaction (they run in the background, beside the
commits) takes a while to write its snapshot, so most kills land inside one.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator

from store import Store
from store.register import add_member
from store.state import State

path, passphrase, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
Store.compact_min = 4096  # compact often, so kills land inside compactions too
if sys.argv[4:] == ["slow"]:
    pieces = State.pieces

    def slow(self: State, per: int = 100) -> Iterator[bytes]:
        for piece in pieces(self, per=5):
            time.sleep(0.002)
            yield piece

    State.pieces = slow  # type: ignore[method-assign]
store = Store.open(path, passphrase)
ids = [m["id"] for m in store.live("member")]
out = sys.stdout
i = 0
while True:
    i += 1
    value = f"n{seed}-{i}"
    if ids and rng.random() < 0.4:
        rec_id = rng.choice(ids)
        out.write(f"B edit {rec_id} {value}\n")
        out.flush()
        store.put("member", {"notes": value}, rec_id)
    else:
        out.write(f"B add - {value}\n")
        out.flush()
        rec_id = add_member(store, {"name": "测试", "notes": value})
        ids.append(rec_id)
        out.write(f"I {rec_id}\n")
    out.write("A\n")
    out.flush()
