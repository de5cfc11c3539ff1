from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs_and_prints_what_its_comments_say() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None
    code = block.group(1)
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})

    expected = [c.strip() for c in re.findall(r"print\(.*\)\s+# (.*)", code)]
    assert printed.getvalue().splitlines() == expected
