"""The stores the durability suite runs against: SQLite in a temporary folder, and a fresh
schema of the PostgreSQL server on 127.0.0.1:5432 (database `test`). Where no PostgreSQL
server answers, its tests skip with a message, except under CI (`CI=true`), where they fail."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES = os.environ.get("BROKERAGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_schema() -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        message = "psycopg is not installed (pip install 'brokerage[postgres]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        message = f"no PostgreSQL server at {POSTGRES}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES else "?"
    try:
        yield f"{POSTGRES}{separator}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/brokerage.db"
    else:
        yield from _postgres_schema()
