"""Where a brokerage keeps its journal: `open_journal("sqlite:///path", "fsync")`."""

from __future__ import annotations

from engine.errors import ValidationError
from gateway.stores.journal import DURABILITIES, GroupCommitJournal
from gateway.stores.sqlite import SqliteJournal


def open_journal(store: str, durability: str) -> GroupCommitJournal:
    """The journal `store` names ("sqlite:///path/brokerage.db"), written with `durability`
    ("fsync": each commit reaches the disk; "os": it reaches the operating system, which
    survives a process crash but not a power cut)."""
    if durability not in DURABILITIES:
        raise ValidationError("durability", f"must be one of {', '.join(DURABILITIES)}", durability)
    if isinstance(store, str) and store.startswith("sqlite:///") and len(store) > len("sqlite:///"):
        return SqliteJournal(store.removeprefix("sqlite:///"), durability)
    raise ValidationError("store", "must be sqlite:///path", store)


__all__ = ["DURABILITIES", "GroupCommitJournal", "open_journal"]
