"""Where a brokerage keeps its journal: `open_journal("sqlite:///path", "fsync")` or
`open_journal("postgresql://host/db", "fsync")`."""

from __future__ import annotations

from engine.errors import ValidationError
from gateway.stores.journal import DURABILITIES, GroupCommitJournal
from gateway.stores.postgres import PostgresJournal
from gateway.stores.sqlite import SqliteJournal

STORE_FORMS = "sqlite:///path or postgresql://[user@]host[:port]/database"


def check_store(store: object) -> str:
    """`store` if it names a store this project keeps a journal in, else `ValidationError`."""
    if isinstance(store, str) and len(store) <= 2000:
        if store.startswith("sqlite:///") and len(store) > len("sqlite:///"):
            return store
        if store.startswith(("postgresql://", "postgres://")):
            return store
    raise ValidationError("store", f"must be {STORE_FORMS}", store)


def open_journal(store: str, durability: str) -> GroupCommitJournal:
    """The journal `store` names ("sqlite:///path/brokerage.db" or "postgresql://..."),
    written with `durability` ("fsync": each commit reaches the disk; "os": it reaches the
    operating system, which survives a process crash but not a power cut)."""
    if durability not in DURABILITIES:
        raise ValidationError("durability", f"must be one of {', '.join(DURABILITIES)}", durability)
    store = check_store(store)
    if store.startswith("sqlite:///"):
        return SqliteJournal(store.removeprefix("sqlite:///"), durability)
    return PostgresJournal(store, durability)


__all__ = ["DURABILITIES", "STORE_FORMS", "GroupCommitJournal", "check_store", "open_journal"]
