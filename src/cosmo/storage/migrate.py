"""Applies the numbered SQL files in migrations/<dialect>/ that the database has not seen yet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cosmo.storage.db import Database

MIGRATIONS_ROOT = Path(__file__).resolve().parents[3] / "migrations"


def pending(db: Database) -> list[Path]:
    folder = MIGRATIONS_ROOT / db.dialect
    with db.transaction() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        done = {r["version"] for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
    return [p for p in sorted(folder.glob("*.sql")) if p.stem not in done]


def migrate(db: Database) -> list[str]:
    """Idempotent; each file runs in its own transaction together with its record."""
    applied = []
    for path in pending(db):
        statements = [s.strip() for s in path.read_text().split(";") if s.strip()]
        with db.transaction() as cur:
            if db.is_postgres:
                # Two processes migrating at once: the second waits, then finds nothing to do.
                cur.execute("SELECT pg_advisory_xact_lock(7301)")
            if cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (path.stem,)).fetchone():
                continue
            for statement in statements:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                (path.stem, datetime.now(UTC)),
            )
        applied.append(path.stem)
    return applied
