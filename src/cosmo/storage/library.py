"""The eventsourcing library's application: the event table's schema, the mapper (topics, transcoding) and the
recorder that reads the ordered log. Commands save through `storage.event_store`, not through it."""

from __future__ import annotations

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteDatastore

from cosmo.config import Settings
from cosmo.domain import aggregate_classes
from cosmo.storage.snapshots import CosmoSnapshot, remember_fingerprints

SQLITE_WAIT = 30  # seconds a save may queue for SQLite's one writer (as SQLITE_LOCK_TIMEOUT below)


class CosmoApp(Application):
    name = "Cosmo"
    # The snapshot table exists; which aggregates snapshot, and when, is theirs to say (storage/snapshots.py).
    is_snapshotting_enabled = True
    snapshot_class = CosmoSnapshot

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        remember_fingerprints(aggregate_classes())
        # eventsourcing has no setting for how long a save waits for the SQLite writer connection (5 s): a burst
        # of writers on a slow disk waits longer than that, and must queue rather than fail.
        datastore = getattr(self.recorder, "datastore", None)
        if isinstance(datastore, SQLiteDatastore):
            datastore.pool.pool_timeout = SQLITE_WAIT


def library_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's own settings, derived from ours."""
    db = settings.database
    if db.is_postgres:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": db.dbname,
            "POSTGRES_HOST": db.host,
            "POSTGRES_PORT": str(db.port),
            "POSTGRES_USER": db.user or "postgres",
            "POSTGRES_PASSWORD": db.password,
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "5",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": db.path,
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_WAIT),
    }


def events_channel(app: Application) -> str:
    return f"{app.name.lower()}_events"
