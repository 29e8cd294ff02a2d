"""The `cosmo` command, run in-process through click."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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


def test_operators_read_the_log_from_the_cli(backend: Backend) -> None:
    runner = CliRunner()
    env = backend.env
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    made = runner.invoke(main, ["createsuperuser", "--username", "root", "--password", "Sup3r-secret"], env=env)
    assert made.exit_code == 0, made.output

    tail = runner.invoke(main, ["events", "tail", "-n", "3"], env=env)
    assert tail.exit_code == 0, tail.output
    lines = tail.output.strip().splitlines()
    assert len(lines) == 3 and "user 1 v1  User.Registered" in lines[-1]
    as_json = runner.invoke(main, ["events", "tail", "--json", "--entity", "user"], env=env)
    event = json.loads(as_json.output.strip().splitlines()[-1])
    assert event["data"]["password_hash"] == "[redacted]" and len(event["hash"]) == 64

    history = runner.invoke(main, ["events", "show", "user", "1"], env=env)
    assert history.exit_code == 0 and "user 1: 1 versions" in history.output
    assert "Sup3r" not in history.output and "[redacted]" in history.output
    now = runner.invoke(main, ["events", "show", "user", "1", "--as-of", "2999-01-01T00:00:00Z"], env=env)
    assert json.loads(now.output)["state"]["username"] == "root"
    before = runner.invoke(main, ["events", "show", "user", "1", "--as-of", "2000-01-01"], env=env)
    assert before.exit_code != 0 and "did not exist" in before.output
    assert runner.invoke(main, ["events", "show", "user", "1", "--as-of", "soon"], env=env).exit_code == 2
    assert runner.invoke(main, ["events", "show", "user", "99"], env=env).exit_code != 0

    exported = runner.invoke(main, ["audit", "export", "--after", "2000-01-01", "--before", "2999-01-01"], env=env)
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines() if line.startswith("{")]
    assert [r["cursor"] for r in rows] == list(range(1, len(rows) + 1)) and rows[-1]["type"] == "User.Registered"
    none = runner.invoke(main, ["audit", "export", "--before", "2000-01-01"], env=env)
    assert none.exit_code == 0 and "0 events" in none.output

    checked = runner.invoke(main, ["audit", "verify", "--since", "1"], env=env)
    assert checked.exit_code == 0 and "the log matches" in checked.output, checked.output
    backwards = runner.invoke(main, ["audit", "export", "--after", "2030-01-02", "--before", "2030-01-01"], env=env)
    assert backwards.exit_code == 2 and "later than --after" in backwards.output
    huge = runner.invoke(main, ["audit", "verify", "--since", "9" * 19], env=env)
    assert huge.exit_code == 2 and "at most 18 digits" in huge.output
    bad = runner.invoke(main, ["audit", "verify", "--expect", "1:nothex"], env=env)
    assert bad.exit_code == 2 and "SEQ:SIGNATURE" in bad.output


def test_events_tail_follow_stops_on_ctrl_c_after_new_events(backend: Backend, tmp_path) -> None:
    env = {**os.environ, **backend.env}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=backend.env).exit_code == 0
    cosmo = [sys.executable, "-m", "cosmo.cli"]
    follow = subprocess.Popen(
        [*cosmo, "events", "tail", "-n", "1", "--follow"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        made = runner.invoke(main, ["createsuperuser", "--username", "root", "--password", "Sup3r-secret"], env=env)
        assert made.exit_code == 0, made.output
        assert follow.stdout is not None
        deadline = time.monotonic() + 30
        while "User.Registered" not in follow.stdout.readline():
            assert time.monotonic() < deadline
        follow.send_signal(signal.SIGINT)
        status = follow.wait(timeout=10)
        assert status == 0, follow.stderr.read() if follow.stderr else status
    finally:
        if follow.poll() is None:
            follow.kill()
