"""The webhook rules that need no server: URL shapes, the egress guard's address rules (with a fake resolver),
the retry schedule, Retry-After, and bodies kept under their size limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from cosmo.domain.actors import SYSTEM, Actor
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.webhooks import RETRY_SCHEDULE, Webhook, new_secret, retry_delay, url_problems
from cosmo.live.egress import REFUSED, UNRESOLVED, EgressGuard, EgressRefused
from cosmo.live.webhook_bodies import fit
from cosmo.live.webhooks import pinned, retry_after

ADMIN = Actor(1, "superuser", "none")


def guard(addresses: dict[str, list[str]], allow: frozenset[str] = frozenset()) -> EgressGuard:
    return EgressGuard(allow, resolve=lambda host, port: addresses.get(host, []))


def test_the_guard_wants_every_address_public() -> None:
    g = guard({"good.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.5"]})
    assert g.target("https://good.example/x").address == "93.184.216.34"
    with pytest.raises(EgressRefused, match="private"):
        g.target("https://mixed.example/x")  # a rebinding name with one inside address among public ones
    with pytest.raises(EgressRefused) as found:
        g.target("https://nowhere.example/x")
    assert str(found.value) == UNRESOLVED
    for inside in ("127.0.0.1", "10.9.8.7", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.1.1", "0.0.0.0"):  # noqa: S104
        with pytest.raises(EgressRefused, match="private"):
            g.target(f"https://{inside}/x")
    wrapped = ("[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a9fe:a9fe]", "[::a9fe:a9fe]", "[::127.0.0.1]", "[2002:7f00:1::1]")
    for inside in ("[::1]", "[fe80::1]", "[fd12::1]", "[::ffff:10.0.0.1]", "[::]", "[2001:0:4136:e378::1]", *wrapped):
        with pytest.raises(EgressRefused) as found:
            g.target(f"https://{inside}/x")
        assert str(found.value) == REFUSED


def test_allow_listed_hosts_may_be_inside() -> None:
    g = guard({"receiver.local": ["192.168.5.5"]}, allow=frozenset({"receiver.local", "127.0.0.1"}))
    assert g.target("http://receiver.local:9000/hook").address == "192.168.5.5"
    assert g.target("http://127.0.0.1:9000/hook").address == "127.0.0.1"
    with pytest.raises(EgressRefused):
        g.target("http://127.0.0.2:9000/hook")
    public_only = guard({"hooks.example": ["93.184.216.34"]})
    with pytest.raises(EgressRefused, match="http"):
        public_only.target("http://hooks.example/in")  # plain http, its host no longer allow-listed


def test_a_delivery_connects_to_the_checked_address_under_its_own_name() -> None:
    url, headers = pinned("https://hooks.example:8443/in?x=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/in?x=1" and headers == {"host": "hooks.example:8443"}
    assert pinned("https://hooks.example/in", "2606:2800::1")[0] == "https://[2606:2800::1]/in"


def test_url_shapes() -> None:
    allow = frozenset({"127.0.0.1"})
    assert url_problems("https://hooks.example/in", allow) == []
    assert url_problems("http://127.0.0.1:9000/hook", allow) == []
    for bad in (
        "http://hooks.example/in",
        "https://u:p@hooks.example/",
        "https://hooks.example/#x",
        "mailto:x@y",
        "https://",
        "https://hooks.example:70000/",
        "https://hooks.example:0/",
        "https://hooks.example/#",
        "https://hooks\x00.example/",
        "",
    ):
        assert url_problems(bad, allow), bad


def test_the_retry_schedule_and_retry_after() -> None:
    assert [retry_delay(n) for n in range(1, 9)] == [*RETRY_SCHEDULE, None]
    assert RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("120", now) == 120
    assert retry_after("99999999999", now) == 24 * 3600
    assert retry_after("Thu, 01 Jan 2026 01:00:00 GMT", now) == 3600
    assert retry_after("Wed, 31 Dec 2025 01:00:00 GMT", now) == 0
    for junk in (None, "", "soon", "-5", "1e9", "٣"):
        assert retry_after(junk, now) is None


def test_bodies_stay_under_their_limit() -> None:
    data = {"id": 1, "content": "\u2603" * 10_000, "notes": "\x01" * 5_000, "title": "short"}
    fitted = fit(data, 20_000)
    assert len(msgspec.json.encode(fitted)) <= 20_000
    assert fitted["truncated"] is True and fitted["title"] == "short" and fitted["id"] == 1
    small = {"id": 1, "content": "hi"}
    assert fit(small, 20_000) is small


def test_the_aggregate_decides_who_and_when() -> None:
    hook = Webhook.register(7, {"url": "https://hooks.example/"}, new_secret(b"k" * 32), ADMIN)
    with pytest.raises(PermissionDenied):
        hook.update({"description": "x"}, Actor(2, "manager", "none"))
    with pytest.raises(ValueError):
        new_secret(b"short")
    hook.rotate_secret(new_secret(b"n" * 32), datetime(2026, 1, 1, tzinfo=UTC), ADMIN)
    assert hook.previous_until == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=24)
    assert hook.disable("gone", SYSTEM) is True and hook.disable("gone", SYSTEM) is False
    with pytest.raises(ValidationFailed):
        hook.request_test(hook.id, ADMIN)  # inactive
    hook.update({"is_active": True}, ADMIN)
    assert hook.disabled_reason == ""
    hook.delete(ADMIN)
    with pytest.raises(NotFound):
        hook.update({"description": "x"}, ADMIN)
