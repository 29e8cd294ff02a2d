"""Webhooks through the API and a real receiver: registration (superusers only, SSRF refused), signed deliveries
of task, booking, import, photo and message events verified with the `standardwebhooks` package, the test,
replay and redelivery requests, secret rotation, per-entity order, the retry schedule on a fake clock, 410 and
five failing days disabling an endpoint, and what survives a rebuild and a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from cosmo.domain.webhooks import RETRY_SCHEDULE
from cosmo.live.egress import PLAIN_HTTP, EgressGuard
from cosmo.live.webhook_bodies import Bodies
from cosmo.live.webhooks import FAILING, GONE, Deliverer
from cosmo.projections.webhooks.outbox import Outbox
from tests.api.test_imports_api import imported, settle
from tests.api.test_photos_api import jpeg
from tests.api.test_photos_api import upload as upload_photo
from tests.conftest import Api, Backend, make_api
from tests.receiver import Receiver
from tests.sheets import airbnb_row, airbnb_xlsx

ALLOW = {"COSMO_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}


@pytest.fixture
def api(backend: Backend) -> Iterator[Api]:
    yield from make_api(backend, **ALLOW)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def register(api: Api, headers: dict, url: str, **fields: object) -> dict:
    r = api.post("/api/webhooks/", json={"url": url, **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def deliveries(api: Api, headers: dict, webhook_id: int, **params: str) -> list[dict]:
    r = api.get(f"/api/webhooks/{webhook_id}/deliveries/", params={"page_size": "100", **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def verified(secret: str, received) -> dict:
    return Verifier(secret).verify(received.body, received.headers)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


def by_hand(api: Api, clock: Clock, guard: EgressGuard | None = None) -> Deliverer:
    """The runtime's own delivery worker stopped, and one that runs only when told, on `clock`."""
    rt = api.runtime
    rt.call(rt.deliverer.stop)
    return Deliverer(Outbox(rt.adb), Bodies(rt.app), guard or rt.egress, rt.disable_webhook, clock=clock)


def run(api: Api, deliverer: Deliverer) -> int:
    made = api.runtime.call(deliverer.drain)
    api.runtime.settle(api.runtime.app.recorder.max_notification_id() or 0)  # a disable's events
    return made


def task(api: Api, headers: dict, **fields: object) -> dict:
    r = api.post("/api/tasks/", json={"title": "Clean 101", "task_type": "cleaning", **fields}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


# -- registration ------------------------------------------------------------------------------------------------


def test_only_superusers_manage_webhooks(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url)
    api.make_user("manny", "manager", "none")
    api.make_user("stella", "staff", "cleaning")
    for who in (api.auth("manny"), api.auth("stella")):
        assert api.get("/api/webhooks/", headers=who).status_code == 403
        assert api.post("/api/webhooks/", json={"url": receiver.url}, headers=who).status_code == 403
        assert api.get(f"/api/webhooks/{hook['id']}/", headers=who).status_code == 403
        assert api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": False}, headers=who).status_code == 403
        assert api.delete(f"/api/webhooks/{hook['id']}/", headers=who).status_code == 403
        assert api.post(f"/api/webhooks/{hook['id']}/test/", headers=who).status_code == 403
        assert api.post(f"/api/webhooks/{hook['id']}/rotate-secret/", headers=who).status_code == 403
        assert api.get(f"/api/webhooks/{hook['id']}/deliveries/", headers=who).status_code == 403
    missing = hook["id"] + 999  # refused as a role, never as a missing id: that would tell which ids exist
    for who in (api.auth("manny"), api.auth("stella")):
        assert api.delete(f"/api/webhooks/{missing}/", headers=who).status_code == 403
        assert api.post(f"/api/webhooks/{missing}/test/", headers=who).status_code == 403
        assert api.post(f"/api/webhooks/{missing}/rotate-secret/", headers=who).status_code == 403
        r = api.post(f"/api/webhooks/{missing}/replay/", json={"since": "2020-01-01T00:00:00Z"}, headers=who)
        assert r.status_code == 403
    assert api.get("/api/webhooks/").status_code == 401
    assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()["is_active"] is True


def test_create_shows_the_secret_once_and_patch_answers_the_object(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url, event_types=["task.created"], description="Ops board")
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) >= 6 + 32
    assert (hook["event_types"], hook["description"], hook["is_active"]) == (["task.created"], "Ops board", True)
    shown = api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()
    listed = api.get("/api/webhooks/", headers=admin).json()
    assert "secret" not in shown and all("secret" not in w for w in listed["results"])
    assert hook["secret"] not in str(listed) and listed["count"] == 1
    changed = api.patch(
        f"/api/webhooks/{hook['id']}/", json={"event_types": ["booking.created", "task.completed"]}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["event_types"] == ["task.completed", "booking.created"]
    assert api.delete(f"/api/webhooks/{hook['id']}/", headers=admin).status_code == 204
    assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).status_code == 404
    assert api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": True}, headers=admin).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.2/hook",  # loopback, not allow-listed
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://no-such-host.invalid/hook",
    ],
)
def test_urls_that_reach_inside_are_refused(api: Api, admin, url: str) -> None:
    r = api.post("/api/webhooks/", json={"url": url}, headers=admin)
    assert r.status_code == 400, r.text
    assert "url" in r.json()["details"]


def test_bad_fields_are_400s(api: Api, admin, receiver: Receiver) -> None:
    bad = [
        {"url": "http://example.com/hook"},  # http only to allow-listed hosts
        {"url": "ftp://example.com/x"},
        {"url": "https://user:pw@example.com/hook"},
        {"url": "https://example.com/hook#frag"},
        {"url": "https://exa mple.com/"},
        {"url": "https://example.com:99999/"},
        {"url": "https://example.com/\x00"},
        {"url": "https://example.com/" + "a" * 3000},
        {"url": receiver.url, "event_types": ["task.exploded"]},
        {"url": receiver.url, "event_types": ["task.created", "task.created"]},
        {"url": receiver.url, "event_types": [2**63]},
        {"url": receiver.url, "description": "nul\x00"},
        {"url": receiver.url, "description": "x" * 501},
        {"url": receiver.url, "secret": "whsec_mine"},
    ]
    for body in bad:
        r = api.post("/api/webhooks/", json=body, headers=admin)
        assert r.status_code == 400, (body, r.text)
    assert api.get("/api/webhooks/", headers=admin).json()["count"] == 0
    hook = register(api, admin, receiver.url)
    for since in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "yesterday", ""):
        r = api.post(f"/api/webhooks/{hook['id']}/replay/", json={"since": since}, headers=admin)
        assert r.status_code == 400, (since, r.text)
    assert api.get(f"/api/webhooks/{hook['id']}/deliveries/?status=lost", headers=admin).status_code == 400
    for odd in ("+1", "01", "\u0661", "\uff11"):  # one object, one path: ids are plain ASCII digits
        assert api.get(f"/api/webhooks/{odd}/", headers=admin).status_code == 404, odd
    assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).status_code == 200
    long_id = "x" * 5000
    r = api.post(f"/api/webhooks/{hook['id']}/deliveries/{long_id}/redeliver/", headers=admin)
    assert r.status_code == 404


# -- delivery ----------------------------------------------------------------------------------------------------


def test_task_events_arrive_signed_in_order(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url)
    api.make_user("stella", "staff", "cleaning")
    staff_id = api.get("/api/users/", headers=admin).json()["results"]
    stella = next(u["id"] for u in staff_id if u["username"] == "stella")
    t = task(api, admin)
    assert api.patch(f"/api/tasks/{t['id']}/", json={"assigned_to": stella}, headers=admin).status_code == 200
    for status in ("in-progress", "completed"):
        r = api.patch(f"/api/staff/tasks/{t['id']}/", json={"status": status}, headers=api.auth("stella"))
        assert r.status_code == 200, r.text
    got = receiver.wait_for(5)
    assert receiver.types() == [
        "task.created",
        "task.assigned",
        "task.status_changed",
        "task.status_changed",
        "task.completed",
    ]
    bodies = [verified(hook["secret"], r) for r in got]
    assert bodies[0]["data"]["id"] == t["id"] and bodies[0]["data"]["status"] == "pending"
    assert bodies[1]["data"]["assigned_to"] == stella
    assert (bodies[3]["data"]["status"], bodies[3]["data"]["previous_status"]) == ("completed", "in-progress")
    assert bodies[4]["data"]["status"] == "completed"
    assert len({r.headers["webhook-id"] for r in got}) == 5
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in got)
    with pytest.raises(WebhookVerificationError):  # a signature is worth nothing with another secret
        Verifier("whsec_" + "QUJD" * 8).verify(got[0].body, got[0].headers)
    done = deliveries(api, admin, hook["id"])
    assert len(done) == 5 and {d["status"] for d in done} == {"delivered"}
    assert all(d["response_status"] == 200 and d["attempts"] == 1 for d in done)


def test_bookings_imports_photos_and_messages_arrive(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url)
    wanted = ["booking.created", "booking.updated", "booking.cancelled", "booking.import_completed"]
    only_bookings = register(api, admin, receiver.url + "?only=bookings", event_types=wanted)
    prop = api.post("/api/properties/", json={"name": "Alfama"}, headers=admin).json()
    api.post(f"/api/properties/{prop['id']}/units/", json={"unit_number": "101"}, headers=admin)
    b = api.post(
        "/api/bookings/",
        json={
            "property": prop["id"],
            "unit": "101",
            "guest_name": "Ana",
            "check_in_date": "2030-01-10",
            "check_out_date": "2030-01-12",
            "earnings": "99.5",
        },
        headers=admin,
    ).json()
    assert api.patch(f"/api/bookings/{b['id']}/", json={"adults": 3}, headers=admin).status_code == 200
    assert api.post(f"/api/bookings/{b['id']}/cancel/", headers=admin).status_code == 200
    sheet = airbnb_xlsx([airbnb_row(confirmation_code="HMWEBHOOK1", start_date="03/01/2030", end_date="03/04/2030")])
    imported(api, admin, sheet, property_id=str(prop["id"]))
    t = task(api, admin)
    assert upload_photo(api, t["id"], admin, jpeg()).status_code == 201
    room = api.post("/api/chat/rooms/", json={"room_type": "group", "name": "Ops"}, headers=admin).json()
    sent = api.post("/api/chat/messages/", json={"room": room["id"], "content": "Hello"}, headers=admin)
    assert sent.status_code == 201, sent.text
    settle(api)
    required = {*wanted, "task.created", "photo.uploaded", "message.created"}
    # Different entities go out in parallel, in any order: wait for every kind, and for the filtered endpoint's five.
    receiver.wait_until(lambda got: required <= {r.json["type"] for r in got if "only=" not in r.path})
    receiver.wait_until(lambda got: sum("only=" in r.path for r in got) == len(wanted) + 1)
    everything = [r for r in receiver.received if "only=" not in r.path]
    bodies: dict[str, dict] = {}
    for r in everything:  # the first of each type (the import creates a booking too)
        body = verified(hook["secret"], r)
        bodies.setdefault(body["type"], body)
    assert set(bodies) >= required
    created = bodies["booking.created"]["data"]
    assert (created["id"], created["unit"], created["property_name"], created["earnings"]) == (
        b["id"],
        "101",
        "Alfama",
        "99.50",
    )
    assert created["check_in_date"] == b["check_in_date"] and created["total_nights"] == 2
    assert bodies["booking.updated"]["data"]["adults"] == 3
    assert bodies["booking.cancelled"]["data"]["status"] == "cancelled"
    assert bodies["booking.import_completed"]["data"]["created"] == 1
    assert bodies["photo.uploaded"]["data"]["task"] == t["id"]
    assert bodies["message.created"]["data"]["content"] == "Hello"
    assert bodies["message.created"]["data"]["room"] == room["id"]
    filtered = [verified(only_bookings["secret"], r)["type"] for r in receiver.received if "only=" in r.path]
    assert sorted(filtered) == sorted([*wanted, "booking.created"])  # the import's booking too


def test_test_replay_and_redelivery_keep_the_message_id(api: Api, admin, receiver: Receiver) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    task(api, admin, title="Before the webhook existed")
    hook = register(api, admin, receiver.url, event_types=["task.created"])
    r = api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin)
    assert r.status_code == 202 and r.json()["deliveries"] == 1
    assert verified(hook["secret"], receiver.wait_for(1)[0])["type"] == "webhook.test"
    replay = api.post(f"/api/webhooks/{hook['id']}/replay/", json={"since": before.isoformat()}, headers=admin)
    assert replay.status_code == 202 and replay.json()["deliveries"] == 1, replay.text  # the test is not replayed
    got = receiver.wait_for(2)
    assert verified(hook["secret"], got[1])["data"]["title"] == "Before the webhook existed"
    first = deliveries(api, admin, hook["id"], status="delivered")[0]
    again = api.post(f"/api/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver/", headers=admin)
    assert again.status_code == 202 and again.json()["results"][0]["message_id"] == first["message_id"]
    got = receiver.wait_for(3)
    assert got[2].headers["webhook-id"] == got[1].headers["webhook-id"] == first["message_id"]
    assert api.post(f"/api/webhooks/{hook['id']}/deliveries/nope/redeliver/", headers=admin).status_code == 404
    assert api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": False}, headers=admin).status_code == 200
    assert api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin).status_code == 400


def test_rotation_signs_with_both_secrets_for_a_day(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url)
    r = api.post(f"/api/webhooks/{hook['id']}/rotate-secret/", headers=admin)
    assert r.status_code == 200 and r.json()["secret"] != hook["secret"]
    assert r.json()["previous_secret_expires_at"]
    new = r.json()["secret"]
    api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin)
    got = receiver.wait_for(1)[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verified(hook["secret"], got) == verified(new, got)
    clock = Clock()
    clock.now += timedelta(hours=25)
    deliverer = by_hand(api, clock)
    api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin)
    run(api, deliverer)
    late = receiver.received[-1]
    assert len(late.headers["webhook-signature"].split(" ")) == 1
    assert late.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))


# -- failures, on a fake clock -------------------------------------------------------------------------------------


def test_a_failing_receiver_walks_the_retry_schedule(api: Api, admin) -> None:
    failing = Receiver(answers=[500]).start()
    try:
        clock = Clock()
        deliverer = by_hand(api, clock)
        hook = register(api, admin, failing.url)
        task(api, admin)
        assert run(api, deliverer) == 1
        for attempt, delay in enumerate(RETRY_SCHEDULE, start=1):
            (d,) = deliveries(api, admin, hook["id"])
            assert (d["status"], d["attempts"], d["response_status"]) == ("retrying", attempt, 500)
            wait = (datetime.fromisoformat(d["next_attempt_at"]) - clock.now).total_seconds()
            assert delay * 0.9 - 0.01 <= wait <= delay * 1.1 + 0.01
            clock.now += timedelta(seconds=wait * 0.8)
            assert run(api, deliverer) == 0  # not yet
            clock.now += timedelta(seconds=wait * 0.2 + 0.01)
            assert run(api, deliverer) == 1
        (d,) = deliveries(api, admin, hook["id"])
        assert (d["status"], d["attempts"], d["last_error"]) == ("failed", 8, "HTTP 500")
        assert len(failing.received) == 8 and len({r.headers["webhook-id"] for r in failing.received}) == 1
        assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()["is_active"]  # 28 hours < 5 days
    finally:
        failing.stop()


def test_retry_after_is_honoured_and_order_per_entity_holds(api: Api, admin) -> None:
    busy = Receiver(answers=[503, 200], headers={"Retry-After": "7200"}).start()
    try:
        clock = Clock()
        deliverer = by_hand(api, clock)
        hook = register(api, admin, busy.url)
        t = task(api, admin)
        api.patch(f"/api/tasks/{t['id']}/", json={"priority": "high"}, headers=admin)
        api.patch(f"/api/tasks/{t['id']}/", json={"status": "canceled"}, headers=admin)
        run(api, deliverer)
        assert busy.types() == ["task.created"]  # answered 503: the status change waits behind it
        other = task(api, admin, title="Another task")
        run(api, deliverer)
        # The first task's creation failed: its status change waits behind it; the other task's creation went.
        assert busy.types() == ["task.created", "task.created"]
        assert verified(hook["secret"], busy.received[1])["data"]["id"] == other["id"]
        waiting = [d for d in deliveries(api, admin, hook["id"]) if d["status"] == "retrying"]
        assert len(waiting) == 1
        assert datetime.fromisoformat(waiting[0]["next_attempt_at"]) >= clock.now + timedelta(seconds=7199)
        clock.now += timedelta(seconds=60)
        assert run(api, deliverer) == 0
        clock.now += timedelta(hours=2)
        run(api, deliverer)
        assert busy.types() == ["task.created", "task.created", "task.created", "task.status_changed"]
    finally:
        busy.stop()


def test_gone_disables_and_tells_the_owner(api: Api, admin) -> None:
    gone = Receiver(answers=[410]).start()
    try:
        deliverer = by_hand(api, Clock())
        hook = register(api, admin, gone.url)
        task(api, admin)
        task(api, admin, title="Second")
        run(api, deliverer)
        shown = api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()
        assert (shown["is_active"], shown["disabled_reason"]) == (False, GONE)
        statuses = sorted(d["status"] for d in deliveries(api, admin, hook["id"]))
        assert statuses == ["cancelled", "failed"] or statuses == ["failed", "failed"]
        notes = api.get("/api/notifications/", headers=admin).json()["results"]
        assert any(n["verb"] == "webhook_disabled" and GONE in n["message"] for n in notes)
        task(api, admin, title="After")
        run(api, deliverer)
        assert len(gone.received) <= 2
    finally:
        gone.stop()


def test_five_failing_days_disable_an_endpoint(api: Api, admin) -> None:
    failing = Receiver(answers=[500]).start()
    try:
        clock = Clock()
        deliverer = by_hand(api, clock)
        hook = register(api, admin, failing.url)
        task(api, admin)
        run(api, deliverer)
        clock.now += timedelta(days=4)
        task(api, admin, title="Still failing")
        run(api, deliverer)
        assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()["is_active"]
        clock.now += timedelta(days=1, seconds=1)
        run(api, deliverer)
        shown = api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()
        assert (shown["is_active"], shown["disabled_reason"]) == (False, FAILING)
        assert {d["status"] for d in deliveries(api, admin, hook["id"])} <= {"cancelled", "retrying", "failed"}
        notes = api.get("/api/notifications/", headers=admin).json()["results"]
        assert any(n["verb"] == "webhook_disabled" for n in notes)
        # Switched back on, its failing days start again: one more failure does not disable it at once.
        assert api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": True}, headers=admin).json()["is_active"]
        task(api, admin, title="After switching back on")
        run(api, deliverer)
        assert api.get(f"/api/webhooks/{hook['id']}/", headers=admin).json()["is_active"]
    finally:
        failing.stop()


def test_delivery_time_egress_check_refuses_a_host_no_longer_allowed(api: Api, admin, receiver: Receiver) -> None:
    deliverer = by_hand(api, Clock(), guard=EgressGuard(frozenset()))
    hook = register(api, admin, receiver.url)
    task(api, admin)
    run(api, deliverer)
    (d,) = deliveries(api, admin, hook["id"])
    assert (d["status"], d["last_error"]) == ("retrying", PLAIN_HTTP)
    assert receiver.received == []


# -- what survives ---------------------------------------------------------------------------------------------------


def test_a_rebuild_sends_nothing_again(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url)
    task(api, admin)
    task(api, admin, title="Two")
    receiver.wait_for(2)
    before = deliveries(api, admin, hook["id"])
    api.runtime.runner.rebuild("webhooks")
    task(api, admin, title="Three")
    receiver.wait_for(3)
    after = deliveries(api, admin, hook["id"])
    assert len(after) == 3 and {d["id"] for d in before} <= {d["id"] for d in after}
    assert receiver.types() == ["task.created"] * 3
    assert {d["status"] for d in after} == {"delivered"}


def test_deliveries_left_by_a_stopped_worker_go_out_after_restart(backend: Backend, receiver: Receiver) -> None:
    for api in make_api(backend, **ALLOW):
        api.make_user("admin", "superuser", "none")
        admin = api.auth("admin")
        hook = register(api, admin, receiver.url)
        api.runtime.call(api.runtime.deliverer.stop)  # the worker dies; events keep coming
        for n in range(3):
            task(api, admin, title=f"Task {n}")
        assert receiver.received == []
        assert len(deliveries(api, admin, hook["id"], status="pending")) == 3
    for api in make_api(backend, **ALLOW):
        got = receiver.wait_for(3)
        # Three entities: in flight together, so in any order.
        assert sorted(verified(hook["secret"], r)["data"]["title"] for r in got) == ["Task 0", "Task 1", "Task 2"]
        admin = api.auth("admin")
        assert {d["status"] for d in deliveries(api, admin, hook["id"])} == {"delivered"}


def test_a_backlog_at_one_endpoint_never_starves_another(api: Api, admin) -> None:
    stuck = Receiver(answers=[500]).start()
    healthy = Receiver().start()
    try:
        deliverer = by_hand(api, Clock())
        register(api, admin, stuck.url)
        for n in range(20):
            task(api, admin, title=f"Backlog {n}")
        late = register(api, admin, healthy.url)
        task(api, admin, title="For both")
        rt = api.runtime
        # However small the batch, each endpoint gets its turn (at most 8 rows each).
        due = rt.call(lambda: deliverer.outbox.due(deliverer.clock(), 10, 8))
        assert late["id"] in {d.webhook_id for d in due}
        assert sum(d.webhook_id != late["id"] for d in due) <= 8
    finally:
        stuck.stop()
        healthy.stop()


def test_normal_running_sends_each_message_once(api: Api, admin, receiver: Receiver) -> None:
    register(api, admin, receiver.url)
    for n in range(40):
        task(api, admin, title=f"Task {n}")
    receiver.wait_for(40)
    time.sleep(1.5)  # long enough for the worker to look again, several times
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_a_redelivered_booking_says_what_it_said_then(api: Api, admin, receiver: Receiver) -> None:
    hook = register(api, admin, receiver.url, event_types=["booking.created"])
    prop = api.post("/api/properties/", json={"name": "Sunset Villa"}, headers=admin).json()
    unit = api.post(f"/api/properties/{prop['id']}/units/", json={"unit_number": "101"}, headers=admin).json()
    fields = {"property": prop["id"], "unit": "101", "guest_name": "Ana"}
    r = api.post(
        "/api/bookings/", json={**fields, "check_in_date": "2030-05-01", "check_out_date": "2030-05-03"}, headers=admin
    )
    assert r.status_code == 201, r.text
    first = receiver.wait_for(1)[0]
    api.patch(f"/api/properties/{prop['id']}/", json={"name": "Renamed Villa"}, headers=admin)
    api.patch(f"/api/properties/{prop['id']}/units/{unit['id']}/", json={"unit_number": "999"}, headers=admin)
    (d,) = deliveries(api, admin, hook["id"])
    assert api.post(f"/api/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver/", headers=admin).status_code == 202
    again = receiver.wait_for(2)[1]
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    data = verified(hook["secret"], again)["data"]
    assert (data["property_name"], data["unit"]) == ("Sunset Villa", "101")
    assert again.body == first.body


def test_a_new_test_never_waits_behind_a_failing_one(api: Api, admin) -> None:
    flaky = Receiver(answers=[500, 200]).start()
    try:
        deliverer = by_hand(api, Clock())
        hook = register(api, admin, flaky.url)
        api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin)
        run(api, deliverer)
        api.post(f"/api/webhooks/{hook['id']}/test/", headers=admin)
        run(api, deliverer)
        statuses = sorted(d["status"] for d in deliveries(api, admin, hook["id"]))
        assert statuses == ["delivered", "retrying"]
    finally:
        flaky.stop()
