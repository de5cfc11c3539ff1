from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest


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


ROOT = Path(__file__).resolve().parents[2]
ALLOWED: dict[str, set[str] | None] = {
    "engine": set(sys.stdlib_module_names) | {"engine", "sortedcontainers"},
    "actors": None,  # anything but the tiers above it
    "gateway": None,
}
ABOVE = {
    "engine": {"actors", "gateway", "loadtest"},
    "actors": {"gateway", "loadtest"},
    "gateway": {"loadtest"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Each module of `package` and the top-level packages it imports, anywhere in the file
    (function-level imports count too)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names - {"__future__"}
    return found


@pytest.mark.parametrize("package", ["engine", "actors", "gateway"])
def test_every_import_points_down_the_layers(package: str) -> None:
    """engine imports only the standard library and sortedcontainers; actors never imports
    gateway or loadtest; gateway never imports loadtest (the benchmark registers itself)."""
    wrong = {}
    for module, names in imported_packages(package).items():
        allowed = ALLOWED[package]
        bad = names & ABOVE[package]
        if allowed is not None:
            bad |= names - allowed
        if bad:
            wrong[module] = sorted(bad)

    assert wrong == {}


def test_every_message_an_actor_handles_is_in_the_protocol_module() -> None:
    """Each handled type is a message of `actors.messages` (whose docstring names its sender
    and handler) or a domain command of `engine.commands` (it travels in a `Request`), and
    no other module of `actors` defines a message carrying a reply."""
    from actors import (
        AccountActor,
        EventBusActor,
        GatewayActor,
        NotificationActor,
        SymbolActor,
        messages,
    )
    from engine import commands

    handled = {
        kind
        for actor in (AccountActor, EventBusActor, GatewayActor, NotificationActor, SymbolActor)
        for kind in actor._handlers
    }
    strays = {
        kind.__qualname__
        for kind in handled
        if kind.__module__ not in (messages.__name__, commands.__name__)
    }
    assert strays == set()
    for kind in handled:
        if kind.__module__ == messages.__name__:
            assert "->" in (kind.__doc__ or ""), f"{kind.__name__} does not say its route"
        else:
            assert kind in commands.COMMANDS.values()
    for path in sorted((ROOT / "actors").glob("*.py")):
        if path.name == "messages.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = {
                    item.target.id
                    for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                }
                assert "reply" not in fields, f"{path.name} defines message {node.name}"
