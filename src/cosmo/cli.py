"""The `cosmo` command: serve, worker, migrate, createsuperuser, projections."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import psycopg

from cosmo.config import ConfigError, DatabaseURL, Settings, database_from_env, load_settings
from cosmo.domain.actors import SYSTEM
from cosmo.domain.errors import ValidationFailed


def _settings(create: bool = True) -> Settings:
    """`create=False` (every command but migrate, serve and worker): a database that does not exist yet is an
    error, not something to make, so a command run from the wrong directory cannot report an empty new system."""
    try:
        if not create:
            _require_database(database_from_env())
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _require_database(url: DatabaseURL) -> None:
    if url.is_postgres:
        try:
            with psycopg.connect(url.conninfo(), connect_timeout=10) as conn:
                found = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        except psycopg.Error as exc:
            raise click.ClickException(f"cannot reach the database {url.redacted()}: {exc}") from exc
        if not (found and found[0]):
            raise click.ClickException(f"{url.redacted()} holds no Cosmo data; run `cosmo migrate` to set it up")
    elif not Path(url.path).is_file():
        raise click.ClickException(
            f"no database at {Path(url.path).resolve()}; run this where it is, set COSMO_DATABASE_URL, "
            "or create one with `cosmo migrate`"
        )


@contextmanager
def _runtime(start: bool = False, run_projections: bool = True, create: bool = False) -> Iterator:
    from cosmo.runtime import Runtime

    runtime = Runtime(_settings(create))
    try:
        if start:
            runtime.start(run_projections=run_projections)
        yield runtime
    finally:
        runtime.close()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Cosmo: the property-operations backend.

    Configuration comes from COSMO_* environment variables (see README); with none set Cosmo runs on SQLite in
    ./cosmo.db with in-process pub/sub.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="API processes.")
@click.option(
    "--projections/--no-projections",
    default=True,
    show_default=True,
    help="Also run projection runners in the API processes (on PostgreSQL only one process leads each "
    "projection; the rest stand by). Use --no-projections when `cosmo worker` processes run them.",
)
def serve(host: str, port: int, workers: int, projections: bool) -> None:
    """Run the HTTP and WebSocket API."""
    import os

    import uvicorn

    if not os.environ.get("COSMO_PUBLIC_URL", "").strip():
        # Absolute links (next pages, signed photo URLs) need the address clients use; guess it from the bind.
        shown = "localhost" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)  # noqa: S104
        os.environ["COSMO_PUBLIC_URL"] = f"http://{shown}:{port}"
        if shown == "localhost":
            click.echo("COSMO_PUBLIC_URL is not set: links will point at localhost; set it to the address clients use")
    settings = _settings()
    with _runtime(create=True):  # migrate and create projection tables once, before workers start
        pass
    click.echo(
        f"Cosmo on http://{host}:{port}/ (public address {settings.public_url}, database "
        f"{settings.database.redacted()}, {workers} worker(s))"
    )
    os.environ["COSMO_SERVE_PROJECTIONS"] = "1" if projections else "0"
    uvicorn.run(
        "cosmo.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
    )


@main.command()
def worker() -> None:
    """Run projection runners until interrupted (hot standby when another worker leads)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with _runtime(start=True, create=True):
        click.echo("cosmo worker running; Ctrl-C to stop")
        stop.wait()


@main.command()
def migrate() -> None:
    """Apply pending migrations and create projection tables (idempotent)."""
    from cosmo.storage.db import Database
    from cosmo.storage.migrate import migrate as apply

    settings = _settings()
    db = Database(settings.database)
    try:
        applied = apply(db)
    finally:
        db.close()
    with _runtime(create=True):
        pass
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")


@main.command()
@click.option("--username", prompt=True, help="Login name.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
@click.option("--email", default="", help="Email (optional; also accepted as the login name).")
def createsuperuser(username: str, password: str, email: str) -> None:
    """Create a superuser account (prompts for anything not given)."""
    with _runtime(start=True) as runtime:
        try:
            user_id = runtime.command(
                lambda: runtime.commands.identity.create_user(
                    SYSTEM, username=username, email=email, password=password, role="superuser", task_group="none"
                )
            )
        except ValidationFailed as exc:
            raise click.ClickException(" ".join(m for ms in exc.details.values() for m in ms)) from exc
    click.echo(f"superuser {username} created (id {user_id})")


@main.group()
def projections() -> None:
    """Inspect and rebuild read models."""


@projections.command("status")
def projections_status() -> None:
    """Name, version, position and lag (events not yet processed) of each projection."""
    with _runtime() as runtime:
        rows = runtime.runner.status()
    click.echo(f"{'NAME':<20} {'VERSION':>7} {'STORED':>7} {'POSITION':>10} {'LAG':>8}  STATE")
    for r in rows:
        stored = r["stored_version"] if r["stored_version"] is not None else "-"
        state = "ok"
        if r["error"] is not None:
            where = f"at event {r['error_position']}" if r["error_position"] else "in its rebuild"
            state = f"FAILING {where} since {r['failed_at']:%Y-%m-%d %H:%M:%S}Z: {r['error']}"
        click.echo(f"{r['name']:<20} {r['version']:>7} {stored:>7} {r['position']:>10} {r['lag']:>8}  {state}")
    if any(r["error"] is not None for r in rows):
        sys.exit(1)


@projections.command("rebuild")
@click.argument("name", required=False)
@click.option("--all", "rebuild_all", is_flag=True, help="Rebuild every projection.")
def projections_rebuild(name: str | None, rebuild_all: bool) -> None:
    """Replay the event log into fresh tables and swap them in; the API keeps serving meanwhile."""
    with _runtime() as runtime:
        known = runtime.projection_names
        if rebuild_all == bool(name):
            raise click.UsageError(f"give a projection NAME or --all (projections: {', '.join(known)})")
        if name and name not in known:
            raise click.BadParameter(f"unknown projection {name!r}; known: {', '.join(known)}", param_hint="NAME")
        for target in known if rebuild_all else [name]:
            head = max(runtime.runner.head(), 1)
            with click.progressbar(length=head, label=f"rebuilding {target}", file=sys.stderr) as bar:
                done = [0]

                def progress(position: int, total: int, bar=bar, done=done) -> None:
                    bar.length = max(total, 1)
                    bar.update(position - done[0])
                    done[0] = position

                position = runtime.runner.rebuild(target, progress)
            click.echo(f"{target}: rebuilt up to event {position}")


if __name__ == "__main__":
    main()
