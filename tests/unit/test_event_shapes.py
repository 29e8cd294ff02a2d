"""Changing an event's shape never breaks replay. Every event class's fields are recorded in
tests/fixtures/event_shapes.json; a change to them must come with a higher `class_version` and an upcaster for each
step (`upcast_v1_v2(state)` on the event class, which the library applies to older stored events as it decodes
them), and a stored topic must always resolve. tests/integration/test_event_evolution.py replays logs written by
earlier versions of Cosmo through today's code."""

from __future__ import annotations

from eventsourcing.utils import resolve_topic

from tests.evolution import current, recorded

RECORD = "then record it: .venv/bin/python -m tests.evolution --write"


def test_every_recorded_topic_still_resolves() -> None:
    """Stored events name their class by topic: a class renamed or moved without a registered alias
    (eventsourcing.utils.register_topic) leaves its stored events undecodable."""
    lost = []
    for topic in recorded():
        try:
            resolve_topic(topic)
        except Exception:
            lost.append(topic)
    assert not lost, f"stored events of {lost} could no longer be decoded"


def test_a_changed_shape_comes_with_a_version_and_upcasters() -> None:
    problems = []
    for topic, was in recorded().items():
        now = current().get(topic)
        if now is None or now == was:
            continue
        before, after = was["class_version"], now["class_version"]
        if now["fields"] != was["fields"] and after <= before:
            step = f"upcast_v{before}_v{before + 1}"
            problems.append(f"{topic}: its fields changed; raise class_version to {before + 1} and add {step}")
            continue
        cls = resolve_topic(topic)
        missing = [
            f"upcast_v{v}_v{v + 1}"
            for v in range(before, after)
            if not callable(getattr(cls, f"upcast_v{v}_v{v + 1}", None))
        ]
        if missing:
            problems.append(f"{topic}: class_version {after} needs {', '.join(missing)}")
        else:
            problems.append(f"{topic}: changed from version {before} to {after}; {RECORD}")
    assert not problems, "\n".join(problems)


def test_new_event_classes_are_recorded() -> None:
    new = sorted(set(current()) - set(recorded()))
    assert not new, f"new event classes {new}: {RECORD}"
