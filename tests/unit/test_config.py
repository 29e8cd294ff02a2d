from __future__ import annotations

from datetime import timedelta

import pytest

from cosmo.config import ConfigError, load_settings

KEY = {"COSMO_SECRET_KEY": "k" * 40}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COSMO_DATABASE_URL", "mysql://x/y"),
        ("COSMO_DATABASE_URL", "postgresql://host-only"),
        ("COSMO_REDIS_URL", "http://nope"),
        ("COSMO_ACCESS_TOKEN_TTL", "soon"),
        ("COSMO_REFRESH_TOKEN_TTL", "0"),
        ("COSMO_THROTTLE_AUTH", "5/fortnight"),
        ("COSMO_THROTTLE_USER", "0/hour"),
        ("COSMO_SECRET_KEY", "short"),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str, tmp_path) -> None:
    env = {**KEY, "COSMO_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", name: value}
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_defaults_and_postgres_needs_a_key(tmp_path) -> None:
    s = load_settings({"COSMO_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert (tmp_path / "cosmo.secret").exists() and len(s.secret_key) >= 32
    assert load_settings({"COSMO_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}).secret_key == s.secret_key
    assert s.access_token_ttl == timedelta(minutes=30) and s.refresh_token_ttl == timedelta(days=7)
    assert str(s.throttle_auth) == "5/minute" and str(s.throttle_refresh) == "2/minute"
    assert str(s.throttle_upload) == "15/minute" and str(s.throttle_user) == "1000/hour"
    assert s.redis_url is None
    with pytest.raises(ConfigError, match="COSMO_SECRET_KEY"):
        load_settings({"COSMO_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x"})
    pg = load_settings(
        {**KEY, "COSMO_DATABASE_URL": "postgresql://u:p%40ss@db:6543/cosmo", "COSMO_ACCESS_TOKEN_TTL": "5m"}
    )
    assert (pg.database.host, pg.database.port, pg.database.password, pg.database.dbname) == (
        "db",
        6543,
        "p@ss",
        "cosmo",
    )
    assert "p@ss" not in pg.database.redacted() and pg.access_token_ttl == timedelta(minutes=5)
