"""`cosmo bookings template` and `cosmo bookings import`, run in-process through click."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cosmo.cli import main
from cosmo.domain.actors import SYSTEM
from cosmo.runtime import Runtime
from tests.conftest import Backend
from tests.sheets import airbnb_row, airbnb_xlsx


def _property(backend: Backend) -> int:
    runtime = Runtime(backend.settings())
    runtime.start()
    try:
        properties = runtime.commands.properties
        prop = runtime.command(lambda: properties.create(SYSTEM, {"name": "Alfama", "timezone": "Europe/Lisbon"}))
        for number in ("1", "2"):
            runtime.command(lambda number=number: properties.add_unit(SYSTEM, prop, {"unit_number": number}))
        return prop
    finally:
        runtime.close()


def test_import_a_file_from_the_command_line(backend: Backend, tmp_path: Path) -> None:
    runner = CliRunner()
    env = backend.env
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    prop = _property(backend)
    rows = [
        airbnb_row(
            confirmation_code=f"HM{i}",
            guest_name=f"Guest {i}",
            start_date=f"09/{1 + 4 * i:02d}/2025",
            end_date=f"09/{3 + 4 * i:02d}/2025",
            **{"Listing": None, "Unit": "1"},
        )
        for i in range(3)
    ]
    export = tmp_path / "export.xlsx"
    export.write_bytes(airbnb_xlsx(rows))

    dry = runner.invoke(main, ["bookings", "import", str(export), "--property", str(prop), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "would create           3" in dry.output

    done = runner.invoke(main, ["bookings", "import", str(export), "--property", str(prop)], env=env)
    assert done.exit_code == 0, done.output
    assert "completed" in done.output and "created             3" in done.output
    again = runner.invoke(main, ["bookings", "import", str(export), "--property", str(prop)], env=env)
    assert "unchanged           3" in again.output and "created             0" in again.output, again.output

    bad = tmp_path / "photo.xlsx"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    refused = runner.invoke(main, ["bookings", "import", str(bad)], env=env)
    assert refused.exit_code != 0 and "file:" in refused.output


def test_the_template_reads_back(backend: Backend, tmp_path: Path) -> None:
    runner = CliRunner()
    env = backend.env
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    prop = _property(backend)
    path = tmp_path / "template.xlsx"
    written = runner.invoke(main, ["bookings", "template", str(path)], env=env)
    assert written.exit_code == 0 and path.stat().st_size > 0, written.output
    dry = runner.invoke(main, ["bookings", "import", str(path), "--property", str(prop), "--dry-run"], env=env)
    assert dry.exit_code == 0 and "cosmo layout" in dry.output, dry.output
