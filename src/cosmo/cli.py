"""The `cosmo` command: serve, worker, migrate, createsuperuser, projections, bookings, events, audit."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import msgspec
import psycopg

from cosmo.config import ConfigError, DatabaseURL, Settings, database_from_env, load_settings
from cosmo.domain.actors import SYSTEM
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.imports import import_number
from cosmo.projections.audit.projection import ENTITY_NAMES


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
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")
    with _runtime(create=True) as runtime:
        # Read models built by an earlier version of their projection are rebuilt now, beside the live tables the
        # running API keeps serving, rather than by the first worker after the new code rolls out.
        for name in runtime.runner.stale():
            _rebuild(runtime, name)
        # A store written before the audit chain existed gains it here (and anything new since the last run).
        chained = runtime.runner.catch_up("audit_chain")
    if chained:
        click.echo(f"audit chain: {chained} events chained")


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
            _rebuild(runtime, target)


@contextmanager
def _progress(label: str, length: int = 1) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error, and the `progress(position, total)` callback long runs report to."""
    with click.progressbar(length=max(length, 1), label=label, file=sys.stderr) as bar:
        done = [0]

        def progress(position: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(position - done[0])
            done[0] = position

        yield progress


def _rebuild(runtime: Any, name: str) -> None:
    with _progress(f"rebuilding {name}", runtime.runner.head()) as progress:
        position = runtime.runner.rebuild(name, progress)
    click.echo(f"{name}: rebuilt up to event {position}")


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
        with _progress(f"importing {file.name} as {name}") as progress:
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


def _moment(name: str, raw: str | None) -> datetime | None:
    from cosmo.api.params import moment

    try:
        return moment(name, raw)
    except ValidationFailed as exc:
        raise click.BadParameter(" ".join(exc.details.get(name, [])), param_hint=f"--{name.replace('_', '-')}") from exc


def _event_line(e: Any) -> str:
    actor = f"by {e.actor}" if e.actor is not None else ""
    return f"{e.cursor:>10}  {e.timestamp:%Y-%m-%d %H:%M:%S}Z  {e.entity} {e.entity_id} v{e.version}  {e.type}  {actor}"


@main.group()
def events() -> None:
    """Read the event history (as auditors see it: secrets hidden)."""


@events.command("tail")
@click.option("-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(1, 500), help="Events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--entity", type=click.Choice(ENTITY_NAMES), help="Only events of this kind of entity.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (as the export writes them).")
def events_tail(count: int, follow: bool, entity: str | None, as_json: bool) -> None:
    """The latest events, oldest first; --follow waits for more."""
    from cosmo.projections.audit.queries import EventFilters

    stop = threading.Event()

    encoder = msgspec.json.Encoder()

    def show(found: list) -> None:
        for e in found:
            click.echo(encoder.encode(e).decode() if as_json else _event_line(e))

    # Ctrl-C and SIGTERM end the follow, whichever way they arrive: as a KeyboardInterrupt, or through this
    # handler, set again each time round because a SIGINT was seen to go unanswered after the first events.
    with _runtime() as runtime, contextlib.suppress(KeyboardInterrupt):
        if follow:
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        audit = runtime.queries.audit
        page = runtime.call(lambda: audit.events(SYSTEM, EventFilters(entity=entity), True, None, count))
        latest = list(reversed(page.results))
        show(latest)
        last = latest[-1].cursor if latest else 0
        while follow and not stop.is_set():
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            if stop.wait(1):
                break
            newer = EventFilters(entity=entity, since=last)
            found = runtime.call(lambda newer=newer: audit.events(SYSTEM, newer, False, None, 500))
            show(found.results)
            if found.results:
                last = found.results[-1].cursor


@events.command("show")
@click.argument("entity", type=click.Choice(ENTITY_NAMES))
@click.argument("entity_id")
@click.option("--as-of", "as_of", help="An ISO time: the entity as it was then, rebuilt from its events.")
def events_show(entity: str, entity_id: str, as_of: str | None) -> None:
    """One entity: every version and what it changed, or (--as-of) its state at an instant, as JSON."""
    from cosmo.domain.errors import NotFound
    from cosmo.projections.audit import replay

    when = _moment("as_of", as_of)
    with _runtime() as runtime:
        audit, app = runtime.queries.audit, runtime.app
        try:
            if when is not None:
                found = runtime.call(lambda: replay.as_of(audit, app, SYSTEM, entity, entity_id, when))
                click.echo(msgspec.json.format(msgspec.json.encode(found), indent=2).decode())
                return
            history = runtime.call(lambda: replay.history(audit, app, SYSTEM, entity, entity_id))
        except NotFound as exc:
            raise click.ClickException(f"{exc}: not found") from exc
    click.echo(f"{entity} {entity_id}: {len(history.versions)} versions")
    for v in history.versions:
        actor = f" by {v.actor}" if v.actor is not None else ""
        click.echo(f"  v{v.version}  {v.timestamp:%Y-%m-%d %H:%M:%S}Z  {v.type}{actor}  (cursor {v.cursor})")
        for field, change in v.changes.items():
            before, after = (msgspec.json.encode(x).decode()[:80] for x in (change.before, change.after))
            click.echo(f"      {field}: {before} -> {after}")


@main.group()
def audit() -> None:
    """Verify and export the audit trail."""


@audit.command("verify")
@click.option("--since", help="Verify from the last seal at or before this cursor or ISO time (default: everything).")
@click.option(
    "--expect",
    "expected",
    metavar="SEQ:SIGNATURE",
    help="A seal kept outside Cosmo (from GET /api/audit/verify/): it must still be there, unchanged. Without one,"
    " removing the newest seals and rewriting what came after the remaining ones cannot be told apart from a log"
    " that was never sealed further.",
)
def audit_verify(since: str | None, expected: str | None) -> None:
    """Re-read the event store and check it against the audit chain and its seals; report the first broken link
    (exit status 1). The result is kept for GET /api/audit/verify/."""
    from cosmo.projections.audit.chain import audit_key
    from cosmo.projections.audit.verify import Verifier, record

    with _runtime() as runtime:
        settings = runtime.settings
        verifier = Verifier(runtime.app, runtime.db, audit_key(settings.audit_key or settings.secret_key))
        start = 0
        if since:
            if re.fullmatch(r"[0-9]+", since) and len(since) > 18:
                raise click.BadParameter("a cursor has at most 18 digits", param_hint="--since")
            cursor = re.fullmatch(r"[0-9]{1,18}", since)
            start = int(since) if cursor else verifier.position_at(_moment("since", since))
        anchor = None
        if expected:
            found = re.fullmatch(r"([0-9]{1,18}):([0-9a-f]{64})", expected.strip().lower())
            if not found:
                raise click.BadParameter(
                    "expected SEQ:SIGNATURE (the seal's seq and hex signature)", param_hint="--expect"
                )
            anchor = (int(found.group(1)), found.group(2))
        with _progress("verifying", runtime.runner.head()) as progress:
            result = verifier.run(start, progress, anchor)
        record(runtime.db, result)
    took = (result.finished_at - result.started_at).total_seconds()
    scope = f"after event {result.since}" if result.since else "from the start"
    click.echo(f"checked {result.events} events {scope} and {result.seals} seals in {took:.1f} s")
    if result.unchained:
        click.echo(f"{result.unchained} newer events are not chained yet (the worker chains them as it runs)")
    if result.problem is not None:
        click.echo(f"BROKEN at event {result.problem.position} ({result.problem.kind}): {result.problem.message}")
        sys.exit(1)
    click.echo("the log matches its chain and seals")


@audit.command("export")
@click.option("--after", help="ISO time: events at or after it.")
@click.option("--before", help="ISO time: events before it.")
def audit_export(after: str | None, before: str | None) -> None:
    """Events in a time range as JSON Lines on standard output, oldest first."""
    from cosmo.projections.audit.queries import check_range

    start, end = _moment("after", after), _moment("before", before)
    try:
        check_range(start, end)
    except ValidationFailed as exc:
        raise click.BadParameter("must be later than --after", param_hint="--before") from exc
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    with _runtime() as runtime:
        audit = runtime.queries.audit
        head = runtime.runner.head()

        async def write(progress: Callable[[int, int], None]) -> int:
            written = 0
            async for event in audit.export(SYSTEM, start, end):
                out.write(encoder.encode(event) + b"\n")
                progress(event.cursor, head)
                written += 1
            return written

        with _progress("exporting", head) as progress:
            written = runtime.call(lambda: write(progress))
    out.flush()
    click.echo(f"{written} events", err=True)


if __name__ == "__main__":
    main()
