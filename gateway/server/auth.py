"""API keys: an id and a secret per account (Alpaca's `APCA-API-KEY-ID` and
`APCA-API-SECRET-KEY` headers), plus one admin key.

Secrets are 256-bit random tokens, so they are stored as their SHA-256 digest: a fast hash is
enough for a secret that cannot be guessed (slow, salted hashes are for passwords people pick),
and every request checks one. The comparison is constant-time. With a store, each account's
key is kept with the journal (as a note: id, digest, account) before its secret is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

from engine.ids import AccountId

KEY_NOTE = "api-key"
"""The kind of note an account's key is kept under (see `Brokerage.note`)."""
ADMIN_NOTE = "admin-key"
"""The kind of note the admin key is kept under (its id and digest)."""
KEY_ID_HEADER = "APCA-API-KEY-ID"
SECRET_HEADER = "APCA-API-SECRET-KEY"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What a key id unlocks: one account (or, for the admin key, `account_id` None)."""

    key_id: str
    secret_digest: bytes
    account_id: AccountId | None
    user_id: str | None
    alpaca_id: uuid.UUID

    @property
    def is_admin(self) -> bool:
        """True for the admin key."""
        return self.account_id is None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key pair as handed to its owner; the secret is never shown again."""

    key_id: str
    secret: str | None
    """None for a key kept from an earlier start (its secret was shown then)."""


class KeyStore:
    """Key ids to their records. Each record is written once, so lookups need no lock."""

    def __init__(self, admin_key_id: str | None = None, admin_secret: str | None = None) -> None:
        self._records: dict[str, KeyRecord] = {}
        key_id = admin_key_id or "ADMIN" + secrets.token_hex(8).upper()
        secret = admin_secret or secrets.token_urlsafe(32)
        self.admin = IssuedKey(key_id, secret)
        self.admin_chosen = admin_key_id is not None or admin_secret is not None
        """True when the operator gave the admin key or its secret (else it was made here)."""
        self.secret_made = admin_secret is None
        """True when the admin secret was made here (so it must be shown once)."""
        self._records[key_id] = KeyRecord(key_id, _digest(secret), None, None, uuid.uuid4())

    def restore_admin(self, notes: list[str]) -> bool:
        """Take back the admin key an earlier start kept (the latest), unless the operator
        chose one now; return True if it was taken back."""
        if not notes or self.admin_chosen:
            return False
        data = json.loads(notes[-1])
        del self._records[self.admin.key_id]
        record = KeyRecord(
            data["key_id"], bytes.fromhex(data["digest"]), None, None, uuid.UUID(data["alpaca_id"])
        )
        self._records[record.key_id] = record
        self.admin = IssuedKey(record.key_id, None)
        self.secret_made = False
        return True

    def admin_note(self) -> str:
        """What to keep of the admin key: its id and the digest of its secret."""
        record = self._records[self.admin.key_id]
        return json.dumps(
            {
                "key_id": record.key_id,
                "digest": record.secret_digest.hex(),
                "alpaca_id": str(record.alpaca_id),
            }
        )

    def issue(self, account_id: AccountId, user_id: str) -> IssuedKey:
        """Make a new key pair for an account and return it (the only time the secret is seen)."""
        key_id = "PK" + secrets.token_hex(9).upper()
        secret = secrets.token_urlsafe(32)
        record = KeyRecord(key_id, _digest(secret), account_id, user_id, uuid.uuid4())
        self._records[key_id] = record
        return IssuedKey(key_id, secret)

    def restore(self, notes: list[str]) -> int:
        """Take back the keys `note` wrote (from a store's journal); return how many."""
        for text in notes:
            data = json.loads(text)
            record = KeyRecord(
                data["key_id"],
                bytes.fromhex(data["digest"]),
                AccountId(data["account_id"]),
                data["user_id"],
                uuid.UUID(data["alpaca_id"]),
            )
            self._records[record.key_id] = record
        return len(notes)

    def note(self, key_id: str) -> str:
        """What to keep of an account's key so that `restore` can take it back: its id, the
        digest of its secret (never the secret), its account and user."""
        record = self._records[key_id]
        return json.dumps(
            {
                "key_id": record.key_id,
                "digest": record.secret_digest.hex(),
                "account_id": record.account_id,
                "user_id": record.user_id,
                "alpaca_id": str(record.alpaca_id),
            }
        )

    def check(self, key_id: str | None, secret: str | None) -> KeyRecord | None:
        """The record of a key if the secret matches, else None."""
        if not key_id or not secret:
            return None
        record = self._records.get(key_id)
        if record is None:
            hmac.compare_digest(_digest(secret), _digest(""))  # same work for unknown ids
            return None
        if not hmac.compare_digest(_digest(secret), record.secret_digest):
            return None
        return record

    def __len__(self) -> int:
        return len(self._records)
