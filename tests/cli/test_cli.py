"""The `cosmo` command, run in-process through click."""

from __future__ import annotations

from click.testing import CliRunner

from cosmo.cli import main
from tests.conftest import Backend


def test_cli_flow(backend: Backend) -> None:
    runner = CliRunner()
    env = backend.env
    first = runner.invoke(main, ["migrate"], env=env)
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["migrate"], env=env)
    assert again.exit_code == 0 and "up to date" in again.output
    r = runner.invoke(
        main,
        ["createsuperuser", "--username", "root", "--password", "Sup3r-secret", "--email", "root@example.com"],
        env=env,
    )
    assert r.exit_code == 0 and "superuser root created" in r.output, r.output
    dup = runner.invoke(main, ["createsuperuser", "--username", "ROOT", "--password", "Sup3r-secret"], env=env)
    assert dup.exit_code != 0 and "already exists" in dup.output
    weak = runner.invoke(main, ["createsuperuser", "--username", "x", "--password", "123"], env=env)
    assert weak.exit_code != 0 and "too short" in weak.output
    status = runner.invoke(main, ["projections", "status"], env=env)
    assert status.exit_code == 0 and "users" in status.output and "invite_codes" in status.output
    rebuilt = runner.invoke(main, ["projections", "rebuild", "--all"], env=env)
    assert rebuilt.exit_code == 0 and "users: rebuilt up to event" in rebuilt.output
    assert runner.invoke(main, ["projections", "rebuild", "nope"], env=env).exit_code != 0
    interactive = runner.invoke(main, ["createsuperuser"], env=env, input="bob\nB0b-password\nB0b-password\n")
    assert interactive.exit_code == 0 and "superuser bob created" in interactive.output


def test_cli_refuses_bad_configuration(tmp_path) -> None:
    r = CliRunner().invoke(
        main, ["migrate"], env={"COSMO_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "COSMO_THROTTLE_AUTH": "lots"}
    )
    assert r.exit_code != 0 and "COSMO_THROTTLE_AUTH" in r.output
    assert "serve" in CliRunner().invoke(main, ["--help"]).output
