"""HS256 tokens: minted for a deployment by `voxroom token`, verified on every request."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt

from voxroom.identity import Account

ALGORITHM = "HS256"
DEFAULT_TTL_S = 24 * 3600
_MAX_ACCOUNT_CHARS = 128


class AuthError(Exception):
    """Missing, expired or forged token: the caller gets 401 or close code 4401."""


class TokenAuthority:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a token secret is required")
        self._secret = secret

    def mint(
        self,
        account: str,
        *,
        kind: str = "user",
        ttl_s: float = DEFAULT_TTL_S,
        rooms: Iterable[str] | None = None,
        now: float | None = None,
    ) -> str:
        if kind not in ("user", "bot"):
            raise ValueError("kind must be 'user' or 'bot'")
        if not account or len(account) > _MAX_ACCOUNT_CHARS:
            raise ValueError(f"account must be 1 to {_MAX_ACCOUNT_CHARS} characters")
        issued = int(now if now is not None else time.time())
        claims: dict[str, object] = {"sub": account, "kind": kind, "iat": issued, "exp": issued + int(ttl_s)}
        if rooms is not None:
            claims["rooms"] = sorted(set(rooms))
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Account:
        if not token:
            raise AuthError("no token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        sub, kind, rooms = claims.get("sub"), claims.get("kind", "user"), claims.get("rooms")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_ACCOUNT_CHARS:
            raise AuthError("invalid 'sub' claim")
        if kind not in ("user", "bot"):
            raise AuthError("invalid 'kind' claim")
        if rooms is not None and not (isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)):
            raise AuthError("invalid 'rooms' claim")
        return Account(id=sub, kind=kind, rooms=frozenset(rooms) if rooms is not None else None)


def bearer_token(authorization: str | None) -> str | None:
    """The token from an `Authorization: Bearer ...` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
