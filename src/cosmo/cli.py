"""The `cosmo` command: serve, worker, migrate, createsuperuser, projections, bookings."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import msgspec
import psycopg

from cosmo.config import ConfigError, DatabaseURL, Settings, database_from_env, load_settings
from cosmo.domain.actors import SYSTEM
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.imports import import_number


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
def _runtime(
    start: bool = False, run_projections: bool = True, create: bool = False, run_policies: bool = True
) -> Iterator:
    from cosmo.runtime import Runtime

    runtime = Runtime(_settings(create))
    try:
        if start:
            runtime.start(run_projections=run_projections, run_policies=run_policies)
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
    from cosmo.api.chat_socket import MAX_FRAME

    uvicorn.run(
        "cosmo.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
        ws_max_size=MAX_FRAME,  # larger frames close the socket with 1009 before anything reads them
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
    with _runtime(start=True, run_policies=False) as runtime:  # no policies, no deliveries: one command
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


@main.group()
def bookings() -> None:
    """Import bookings from spreadsheets."""


def _file_problem(exc: ValidationFailed) -> click.ClickException:
    return click.ClickException(" ".join(f"{k}: {' '.join(v)}" for k, v in exc.details.items()))


def _table(rows: list[tuple[str, object]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"  {label:<{width}}  {value}")


def _conflicts_and_errors(conflicts: list[dict], errors: list[dict], shown: int = 20) -> None:
    if conflicts:
        click.echo(f"Conflicts waiting for review ({len(conflicts)}):")
        click.echo(f"  {'ROW':>6}  {'TYPE':<18} {'CODE':<16} DIFFERENCES / EXISTING")
        for c in conflicts[:shown]:
            existing = c.get("existing_booking") or {}
            detail = ", ".join(c.get("differences") or []) or f"booking {existing.get('id', '-')}"
            code = c["new_booking"].get("external_code", "")
            click.echo(f"  {c['row_number']:>6}  {c['conflict_type']:<18} {code:<16} {detail}")
    if errors:
        click.echo(f"Rows refused ({len(errors)}):")
        for e in errors[:shown]:
            click.echo(f"  row {e['row_number']:>6}  {e['field']}: {e['message']}")
    if len(conflicts) > shown or len(errors) > shown:
        click.echo(f"  (the first {shown} of each; GET /api/bookings/imports/<id>/ lists more)")


@bookings.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--property", "property_id", type=int, help="Property of the rows that name none.")
@click.option("--sheet", "sheet_name", help="The workbook's sheet to read (default: the first).")
@click.option("--dry-run", is_flag=True, help="Say what the import would do; change nothing.")
def bookings_import(file: Path, property_id: int | None, sheet_name: str | None, dry_run: bool) -> None:
    """Import a spreadsheet of bookings (.xlsx or .csv: Airbnb, Booking.com, a cleaning schedule or Cosmo's
    template). Conflicting rows wait for review in the API (POST /api/bookings/imports/<id>/resolve/)."""
    data = file.read_bytes()
    if dry_run:
        with _runtime() as runtime:
            try:
                sheet, done = runtime.call(
                    lambda: runtime.commands.imports.preview(SYSTEM, data, file.name, property_id, sheet_name)
                )
            except ValidationFailed as exc:
                raise _file_problem(exc) from exc
        rows = "row" if sheet.total_rows == 1 else "rows"
        click.echo(f"{file.name}: {sheet.total_rows} {rows} ({sheet.layout} layout); a dry run, nothing was changed")
        _table(
            [
                ("would create", done.created),
                ("would update", done.updated),
                ("unchanged", done.unchanged),
                ("would wait for review", len(done.conflicts)),
                ("refused rows", len({e["row_number"] for e in done.errors})),
            ]
        )
        _conflicts_and_errors(done.conflicts, sorted(done.errors, key=lambda e: (e["row_number"], e["field"])))
        return
    with _runtime(start=True, run_policies=False) as runtime:
        commands = runtime.commands.imports
        try:
            name = runtime.command(lambda: commands.start(SYSTEM, data, file.name, property_id, sheet_name))
        except ValidationFailed as exc:
            raise _file_problem(exc) from exc
        number = import_number(name)
        assert number is not None
        with click.progressbar(length=1, label=f"importing {file.name} as {name}", file=sys.stderr) as bar:
            done = [0]

            def progress(position: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(position - done[0])
                done[0] = position

            runtime.call(lambda: commands.run(number, progress))
        runtime.call(runtime.turnover.run_until_idle)  # the bookings' turnover tasks, before the summary
        runtime.settle(runtime.app.recorder.max_notification_id() or 0)
        found = runtime.call(lambda: runtime.queries.imports.detail(SYSTEM, number))
    click.echo(f"{name}: {found.status} ({found.total_rows} rows, {found.layout} layout)")
    _table(
        [
            ("created", found.created),
            ("updated", found.updated),
            ("unchanged", found.unchanged),
            ("waiting for review", found.conflicts_waiting),
            ("row errors", found.error_count),
        ]
    )
    if found.reason:
        click.echo(f"  {found.reason}")
    _conflicts_and_errors(
        [msgspec.to_builtins(c) for c in found.conflicts if c.resolution is None],
        [msgspec.to_builtins(e) for e in found.errors],
    )
    if found.status == "failed":
        sys.exit(1)


@bookings.command("template")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="cosmo-bookings-template.xlsx")
def bookings_template(path: Path) -> None:
    """Write Cosmo's own import template (.xlsx: the columns, and one example row)."""
    from cosmo.imports.spreadsheet import template_xlsx

    try:
        path.write_bytes(template_xlsx())
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from exc
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
