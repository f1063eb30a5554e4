"""Dependencies point one way, tui → sync → store (DESIGN §1): importing ``store`` loads neither
Textual, httpx nor FastAPI, and the command line loads them only for the commands that need them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("textual", "httpx", "fastapi", "uvicorn", "sqlalchemy")


def loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    return set(out.stdout.split())


def test_importing_store_loads_no_interface_or_network_code() -> None:
    modules = loaded_after("import store, store.register, store.search, store.validate\n"
                           "from store.search import member_keys; member_keys({'name': '张三'})")
    assert "store" in modules and "tinydb" in modules  # the probe really ran
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_command_line_loads_no_interface_or_network_code(tmp_path: Path) -> None:
    from tests.conftest import PASSPHRASE, create_store

    store, _ = create_store(tmp_path / "store")
    store.close()
    code = (f"import os\nos.environ['LIUDONG_STORE'] = {str(tmp_path / 'store')!r}\n"
            f"os.environ['LIUDONG_PASSPHRASE'] = {PASSPHRASE!r}\n"
            "from tui.cli import main\n"
            "assert main(['member', 'add', '--name', '张三']) == 0\n"
            "assert main(['member', 'list', '--search', 'zs']) == 0")
    modules = loaded_after(code)
    assert {"tui", "store", "pypinyin"} <= modules  # the commands really ran
    assert not modules & set(HEAVY), modules & set(HEAVY)
