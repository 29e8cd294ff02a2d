"""JWT access and refresh tokens (HS256). Refresh tokens rotate: each is recorded when issued and can be used
once; presenting a used one again is treated as theft and revokes every refresh token of that user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from cosmo.domain.checks import LATEST, MAX_INT
from cosmo.storage.db import Database

ALGORITHM = "HS256"
MAX_TIMESTAMP = int(LATEST.timestamp())
ACCESS = "access"
# Verified access tokens remembered per process: a client sends the same token on every request for its lifetime,
# and checking the signature again each time costs as much as the read it authorises. Expiry is still checked on
# every use; revocation is by user (deactivation, password change), which the per-request user lookup checks.
VERIFIED_CACHE_SIZE = 4096


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    user_id: int
    jti: str
    token_type: str
    issued_at: datetime
    expires_at: datetime


class TokenService:
    def __init__(self, secret: str, access_ttl: timedelta, refresh_ttl: timedelta, db: Database):
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._db = db
        self._verified: dict[str, Claims] = {}

    def _encode(self, user_id: int, token_type: str, ttl: timedelta, now: datetime) -> tuple[str, str]:
        jti = uuid.uuid4().hex
        payload = {
            "token_type": token_type,
            "user_id": user_id,
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), jti

    def decode(self, token: str, token_type: str) -> Claims:
        remember = token_type == ACCESS
        claims = self._verified.get(token) if remember else None
        if claims is None:
            claims = self._verify(token, token_type)
            if remember:
                if len(self._verified) >= VERIFIED_CACHE_SIZE:
                    self._verified.clear()
                self._verified[token] = claims
        if claims.expires_at <= datetime.now(UTC):
            self._verified.pop(token, None)
            raise InvalidToken("Token is invalid or expired")
        return claims

    def _verify(self, token: str, token_type: str) -> Claims:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "jti", "user_id", "token_type"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken("Token is invalid or expired") from exc
        if payload.get("token_type") != token_type:
            raise InvalidToken("Token has wrong type")
        # Strict types: a correctly signed token is still input. PyJWT accepts an `exp` of "123", and `True` is an
        # int to isinstance.
        user_id, jti, iat, exp = (payload.get(k) for k in ("user_id", "jti", "iat", "exp"))
        if not (
            type(user_id) is int
            and 1 <= user_id <= MAX_INT
            and type(jti) is str
            and 0 < len(jti) <= 64
            and type(iat) is int
            and type(exp) is int
            and 0 <= iat <= exp <= MAX_TIMESTAMP
        ):
            raise InvalidToken("Token is invalid or expired")
        return Claims(
            user_id=user_id,
            jti=jti,
            token_type=token_type,
            issued_at=datetime.fromtimestamp(iat, UTC),
            expires_at=datetime.fromtimestamp(exp, UTC),
        )

    def unverified_jti(self, token: str) -> str | None:
        """For throttling by token id before the token is checked (refused requests count too)."""
        try:
            jti = jwt.decode(token, options={"verify_signature": False}).get("jti")
        except jwt.PyJWTError:
            return None
        return jti[:64] if type(jti) is str and jti else None

    def issue_pair(self, user_id: int) -> dict[str, str]:
        now = datetime.now(UTC)
        refresh, jti = self._encode(user_id, "refresh", self.refresh_ttl, now)
        self._db.execute(
            "INSERT INTO refresh_tokens (jti, user_id, issued_at, expires_at) VALUES (%s, %s, %s, %s)",
            (jti, user_id, now, now + self.refresh_ttl),
        )
        return {"access": self._encode(user_id, "access", self.access_ttl, now)[0], "refresh": refresh}

    def consume_refresh(self, token: str) -> Claims:
        """Marks the refresh token used, atomically: of two concurrent refreshes with one token, one wins."""
        claims = self.decode(token, "refresh")
        now = datetime.now(UTC)
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE jti = %s AND used_at IS NULL AND revoked_at IS NULL",
                (now, claims.jti),
            )
            if cur.rowcount == 1:
                return claims
            row = cur.execute("SELECT used_at FROM refresh_tokens WHERE jti = %s", (claims.jti,)).fetchone()
            if row is not None and row["used_at"] is not None:
                cur.execute(
                    "UPDATE refresh_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
                    (now, claims.user_id),
                )
        raise InvalidToken("Token is blacklisted")

    def revoke(self, token: str) -> None:
        claims = self.decode(token, "refresh")
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE refresh_tokens SET revoked_at = %s WHERE jti = %s AND revoked_at IS NULL AND used_at IS NULL",
                (datetime.now(UTC), claims.jti),
            )
            if cur.rowcount != 1:
                raise InvalidToken("Token is blacklisted")

    def revoke_all(self, user_id: int) -> None:
        self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
            (datetime.now(UTC), user_id),
        )
