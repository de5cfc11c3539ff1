from __future__ import annotations

import subprocess
import sys


def test_importing_engine_imports_no_runtime_logging_or_io_library() -> None:
    code = (
        "import sys, engine\n"
        "bad = [m for m in ('pykka', 'structlog', 'threading', 'socket', 'rich') "
        "if m in sys.modules]\n"
        "print(','.join(bad))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == ""
