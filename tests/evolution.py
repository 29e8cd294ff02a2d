"""Event shapes: what every stored event class carries (its fields, which have defaults, its class_version), kept in
tests/fixtures/event_shapes.json so that a change to an event's shape is a decision, not an accident.

    .venv/bin/python -m tests.evolution --write    # after a deliberate change (with its upcaster)

See tests/unit/test_event_shapes.py for the rules a change must follow.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

from eventsourcing.utils import get_topic

from cosmo.domain import aggregate_classes
from cosmo.projections.audit.projection import event_classes

SHAPES = Path(__file__).parent / "fixtures" / "event_shapes.json"
ENVELOPE = ("self", "originator_id", "originator_version", "timestamp", "originator_topic")


def shape(event_class: type) -> dict[str, Any]:
    """{"class_version": n, "fields": {name: "type"}}. A stored event is decoded without its class's __init__, so
    a field old events lack is missing from them whatever default the method has: any change is an upcaster's."""
    parameters = inspect.signature(event_class.__init__).parameters.values()
    return {
        "class_version": getattr(event_class, "class_version", 1),
        "fields": {p.name: str(p.annotation) for p in parameters if p.name not in ENVELOPE},
    }


def current() -> dict[str, dict[str, Any]]:
    return {
        get_topic(ev): shape(ev)
        for cls in aggregate_classes()
        for ev in event_classes(cls)
        if ev.__name__ != "Event"  # the aggregate's base event class: never stored itself
    }


def recorded() -> dict[str, dict[str, Any]]:
    return json.loads(SHAPES.read_text())


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    lines = [
        f"  {json.dumps(topic)}: {json.dumps(found, sort_keys=True)}" for topic, found in sorted(current().items())
    ]
    SHAPES.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one event class per line: reviewable diffs
    print(f"wrote {SHAPES}")
