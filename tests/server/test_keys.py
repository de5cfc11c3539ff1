"""The key store: the admin key made, given, kept and taken back."""

from __future__ import annotations

from gateway.server.auth import KeyStore


def test_the_admin_key_made_here_is_taken_back_after_a_restart() -> None:
    first = KeyStore()
    assert first.secret_made
    assert first.admin.secret is not None
    kept = [first.admin_note()]
    assert first.admin.secret not in kept[0]  # only its digest is kept
    again = KeyStore()
    assert again.restore_admin(kept)
    assert again.admin.key_id == first.admin.key_id
    assert again.admin.secret is None
    assert not again.secret_made
    assert again.check(first.admin.key_id, first.admin.secret) is not None
    assert again.check(first.admin.key_id, "wrong") is None


def test_an_admin_key_the_operator_gives_wins_and_a_made_secret_is_still_shown() -> None:
    kept = [KeyStore().admin_note()]
    given = KeyStore("OPS", "s3cret")
    assert not given.restore_admin(kept)
    assert given.check("OPS", "s3cret") is not None
    assert not given.secret_made
    only_id = KeyStore("OPS")
    assert not only_id.restore_admin(kept)
    assert only_id.secret_made  # its secret was made here: the start prints it once
