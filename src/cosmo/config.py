"""Settings from COSMO_* environment variables, with defaults for the embedded mode."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from psycopg.conninfo import make_conninfo

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "sqlite:///./cosmo.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A COSMO_* variable has a value Cosmo cannot use; the message names the variable."""


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    def __str__(self) -> str:
        unit = next(name for name, secs in _PERIODS.items() if secs == self.period)
        return f"{self.limit}/{unit}"


@dataclass(frozen=True)
class DatabaseURL:
    dialect: str  # "sqlite" or "postgresql"
    path: str = ""  # sqlite file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def conninfo(self) -> str:
        credentials = {k: v for k, v in (("user", self.user), ("password", self.password)) if v}
        # Timestamps come back in UTC whatever the server's zone: a time near the end of 9999 UTC is still 9999.
        return make_conninfo(
            host=self.host, port=self.port, dbname=self.dbname, options="-c timezone=UTC", **credentials
        )

    def redacted(self) -> str:
        if not self.is_postgres:
            return f"sqlite:///{self.path}"
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.host}:{self.port}/{self.dbname}"

    def identity(self) -> str:
        """Which database this is, the same from every process and machine that uses it (a SQLite file by its
        absolute path)."""
        if not self.is_postgres:
            return f"sqlite:{Path(self.path).resolve()}"
        return f"postgresql:{self.host.lower()}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Settings:
    database: DatabaseURL
    redis_url: str | None
    secret_key: str
    media_root: Path
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    throttle_auth: Rate
    throttle_refresh: Rate
    throttle_upload: Rate
    throttle_user: Rate
    password_cost: str  # "standard" in production; "low" only for test suites
    redis_prefix: str  # every Redis key and channel of this deployment starts with it
    public_url: str = DEFAULT_PUBLIC_URL  # scheme://host[:port][/path] that absolute links in responses start with
    media_url_ttl: timedelta = timedelta(hours=1)
    max_body_bytes: int = 1_000_000
    read_your_writes_timeout: float = 2.0
    # Hosts webhooks may reach although they resolve to private or loopback addresses, and over plain http (for
    # development receivers): COSMO_WEBHOOK_ALLOW_HOSTS=127.0.0.1,receiver.local
    webhook_allow_hosts: frozenset[str] = frozenset()
    # Signs the audit chain's seals. Empty: derived from secret_key. Set it (and keep it) where secret_key may be
    # rotated: seals signed with another key fail verification.
    audit_key: str = ""


def parse_rate(name: str, value: str) -> Rate:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*", value)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"{name}={value!r}: expected N/second, N/minute, N/hour or N/day with N >= 1")
    return Rate(int(m.group(1)), _PERIODS[m.group(2)])


def parse_duration(name: str, value: str) -> timedelta:
    """Seconds as a bare number, or a number with s/m/h/d."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"{name}={value!r}: expected a positive duration such as 1800, 30m, 12h or 7d")
    return timedelta(seconds=int(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"])


def parse_database_url(name: str, value: str) -> DatabaseURL:
    if value.startswith("sqlite:///"):
        path = value[len("sqlite:///") :]
        if not path:
            raise ConfigError(f"{name}={value!r}: sqlite URL needs a file path, e.g. sqlite:///./cosmo.db")
        return DatabaseURL("sqlite", path=path)
    parts = urlsplit(value)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise ConfigError(f"{name}: PostgreSQL URL needs a host and a database: postgresql://user@host:port/db")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError(f"{name}: the port is not a number") from None
        return DatabaseURL(
            "postgresql",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=dbname,
        )
    raise ConfigError(f"{name}: expected sqlite:///path or postgresql://user@host:port/db")


def parse_public_url(name: str, value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{name}={value!r}: expected http(s)://host[:port][/path], the address clients use")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{name}={value!r}: the port is not a number") from None
    return value.strip().rstrip("/")


def parse_redis_prefix(name: str, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        raise ConfigError(f"{name}={value!r}: expected 1-64 letters, digits or _ . : -")
    return value if value.endswith(":") else f"{value}:"


def parse_hosts(name: str, value: str) -> frozenset[str]:
    hosts = [h.strip().lower().strip("[]") for h in value.split(",") if h.strip()]
    for host in hosts:
        if not re.fullmatch(r"[a-z0-9_.:-]{1,253}", host):
            raise ConfigError(f"{name}: {host!r} is not a host name or address")
    return frozenset(hosts)


def _secret_key(env: dict[str, str], database: DatabaseURL) -> str:
    key = env.get("COSMO_SECRET_KEY", "")
    if key:
        if len(key.encode()) < 32:
            raise ConfigError("COSMO_SECRET_KEY: must be at least 32 bytes (HS256 keys shorter than that are weak)")
        return key
    if database.is_postgres:
        raise ConfigError("COSMO_SECRET_KEY: required when COSMO_DATABASE_URL points at PostgreSQL")
    # Embedded mode: generate once and keep it beside the database so tokens survive restarts.
    key_file = Path(database.path).resolve().parent / "cosmo.secret"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    log.warning("COSMO_SECRET_KEY is not set: generated one and stored it in %s", key_file)
    return key


def _audit_key(env: dict[str, str]) -> str:
    key = env.get("COSMO_AUDIT_KEY", "")
    if key and len(key.encode()) < 32:
        raise ConfigError("COSMO_AUDIT_KEY: must be at least 32 bytes")
    return key


def database_from_env(env: dict[str, str] | None = None) -> DatabaseURL:
    env = dict(os.environ if env is None else env)
    return parse_database_url("COSMO_DATABASE_URL", env.get("COSMO_DATABASE_URL", "").strip() or DEFAULT_DATABASE)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)

    def get(name: str, default: str) -> str:
        value = env.get(name, "")
        return value if value.strip() else default

    database = database_from_env(env)
    redis_url = env.get("COSMO_REDIS_URL", "").strip() or None
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("COSMO_REDIS_URL: expected redis://host:port/db")
    # Deployments sharing a Redis server must not hear each other's pushes or share counters, and pub/sub channels
    # ignore the database number: every key and channel carries a prefix, by default one derived from the database.
    derived = "cosmo:" + hashlib.sha256(database.identity().encode()).hexdigest()[:16]
    redis_prefix = parse_redis_prefix("COSMO_REDIS_PREFIX", get("COSMO_REDIS_PREFIX", derived))
    cost = get("COSMO_PASSWORD_COST", "standard")
    if cost not in ("standard", "low"):
        raise ConfigError("COSMO_PASSWORD_COST: expected 'standard' or 'low' (tests only)")
    return Settings(
        database=database,
        redis_url=redis_url,
        secret_key=_secret_key(env, database),
        media_root=Path(get("COSMO_MEDIA_ROOT", "./media")),
        access_token_ttl=parse_duration("COSMO_ACCESS_TOKEN_TTL", get("COSMO_ACCESS_TOKEN_TTL", "30m")),
        refresh_token_ttl=parse_duration("COSMO_REFRESH_TOKEN_TTL", get("COSMO_REFRESH_TOKEN_TTL", "7d")),
        throttle_auth=parse_rate("COSMO_THROTTLE_AUTH", get("COSMO_THROTTLE_AUTH", "5/minute")),
        throttle_refresh=parse_rate("COSMO_THROTTLE_REFRESH", get("COSMO_THROTTLE_REFRESH", "2/minute")),
        throttle_upload=parse_rate("COSMO_THROTTLE_UPLOAD", get("COSMO_THROTTLE_UPLOAD", "15/minute")),
        throttle_user=parse_rate("COSMO_THROTTLE_USER", get("COSMO_THROTTLE_USER", "1000/hour")),
        media_url_ttl=parse_duration("COSMO_MEDIA_URL_TTL", get("COSMO_MEDIA_URL_TTL", "1h")),
        password_cost=cost,
        redis_prefix=redis_prefix,
        public_url=parse_public_url("COSMO_PUBLIC_URL", get("COSMO_PUBLIC_URL", DEFAULT_PUBLIC_URL)),
        webhook_allow_hosts=parse_hosts("COSMO_WEBHOOK_ALLOW_HOSTS", env.get("COSMO_WEBHOOK_ALLOW_HOSTS", "")),
        audit_key=_audit_key(env),
    )
