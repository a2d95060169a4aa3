from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth import AuthError, TokenAuthority, bearer_token

SECRET = "a-test-secret-long-enough-for-hs256-keys"


def test_minted_token_verifies_to_its_account() -> None:
    authority = TokenAuthority(SECRET)
    account = authority.verify(authority.mint("bot-7", kind="bot", rooms=["a", "b"]))
    assert (account.id, account.kind, account.rooms) == ("bot-7", "bot", frozenset({"a", "b"}))
    assert account.may_join("a") and not account.may_join("c")
    assert authority.verify(authority.mint("alice")).may_join("anything")


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b.c"])
def test_missing_or_garbage_token_is_refused(token: str | None) -> None:
    with pytest.raises(AuthError):
        TokenAuthority(SECRET).verify(token)


def test_expired_token_is_refused() -> None:
    authority = TokenAuthority(SECRET)
    old = authority.mint("alice", ttl_s=60, now=time.time() - 3600)
    with pytest.raises(AuthError, match="expired"):
        authority.verify(old)


def test_forged_token_is_refused() -> None:
    forged = TokenAuthority("another-deployment-with-its-own-long-key").mint("alice")
    with pytest.raises(AuthError):
        TokenAuthority(SECRET).verify(forged)
    unsigned = jwt.encode({"sub": "alice", "exp": time.time() + 60}, None, algorithm="none")
    with pytest.raises(AuthError):
        TokenAuthority(SECRET).verify(unsigned)


def test_claims_are_checked() -> None:
    secret = SECRET
    no_exp = jwt.encode({"sub": "alice"}, secret, algorithm="HS256")
    bad_kind = jwt.encode({"sub": "alice", "kind": "admin", "exp": time.time() + 60}, secret, algorithm="HS256")
    bad_rooms = jwt.encode({"sub": "alice", "rooms": "lobby", "exp": time.time() + 60}, secret, algorithm="HS256")
    for token in (no_exp, bad_kind, bad_rooms):
        with pytest.raises(AuthError):
            TokenAuthority(secret).verify(token)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None
