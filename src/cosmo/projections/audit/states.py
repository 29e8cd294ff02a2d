"""An entity's state at a version, rebuilt from the event store (never from a read model, which only knows now):
for `as_of` and for what each version of a history changed. Blocking (it reads the log): call it off the loop."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from cosmo.domain.ids import aggregate_id
from cosmo.projections.audit.projection import hidden
from cosmo.projections.entities import booking_data, import_data, message_data, photo_data, task_data
from cosmo.storage.snapshots import load, load_at


def plain(value: Any) -> Any:
    """State as JSON can carry it: sets sorted into lists, dict keys as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        members = [plain(v) for v in value]
        try:
            return sorted(members)
        except TypeError:  # members of mixed kinds: any fixed order will do
            return sorted(members, key=repr)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def raw_state(aggregate: Any) -> dict[str, Any]:
    """Every field of the aggregate (not the library's, not private helpers), secrets included: compare, never show."""
    return {k: plain(v) for k, v in vars(aggregate).items() if not k.startswith("_")}


def state_of(aggregate: Any) -> dict[str, Any]:
    """The aggregate's fields, secrets hidden."""
    return hidden(raw_state(aggregate), type(aggregate).__name__)


def task_shown(task: Any) -> dict[str, Any]:
    """A task as its REST detail showed it: its fields, notes, its checklist with each item's state and the
    progress, and its photos (by id and state; a photo's file is not the task's history). An item's `completed_at`
    is the time of the event that checked it, which the aggregate does not keep: the history shows it."""
    checklist = task.checklist or {}
    items = []
    for item in checklist.get("items", []):
        state = task.item_states.get(item["id"], {})
        items.append(
            {
                **{k: item.get(k) for k in ("id", "text", "item_type", "is_required", "room")},
                "completed": bool(state.get("completed", False)),
                "completed_by": state.get("completed_by"),
                "value": state.get("value"),
                "notes": state.get("notes", ""),
            }
        )
    done = sum(1 for i in items if i["completed"])
    return {
        **task_data(task),
        "notes": task.notes,
        "checklist_id": checklist.get("template_id"),
        "checklist_template": checklist.get("template_name"),
        "checklist": items,
        "checklist_progress": {
            "percentage": round(100 * done / len(items)) if items else 0,
            "completed": done,
            "total": len(items),
            "remaining": len(items) - done,
        },
        "photos": [photo_data(task, photo_id) for photo_id in sorted(task.photos)],
    }


def shown(entity: str, aggregate: Any, app: Application, when: datetime) -> dict[str, Any]:
    """The entity as the REST API showed it at `when`, where there is such a resource; else its state."""
    if entity == "task":
        return task_shown(aggregate)
    if entity == "booking":
        try:
            prop = load_at(app, aggregate_id("property", aggregate.property_id), when)
        except Exception:  # an unknown property: the booking is still shown
            prop = None
        return booking_data(aggregate, prop)
    if entity == "chat_message":
        return message_data(aggregate)
    if entity == "booking_import":
        return import_data(aggregate)
    return state_of(aggregate)


def at(app: Application, originator_id: str, version: int) -> Any:
    return load(app, UUID(originator_id), version)


def versions(app: Application, originator_id: str) -> list[dict[str, dict[str, Any]]]:
    """What each version changed, in order: {field: {"before", "after"}}. Compared on the real values (a changed
    password shows as changed), shown with secrets hidden."""
    out = []
    aggregate: Any = None
    before: dict[str, Any] = {}
    for event in app.events.get(UUID(originator_id)):
        aggregate = event.mutate(aggregate)
        after = raw_state(aggregate)
        name = type(aggregate).__name__
        changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        shown_before = hidden({k: before.get(k) for k in changed}, name)
        shown_after = hidden({k: after.get(k) for k in changed}, name)
        out.append({k: {"before": shown_before[k], "after": shown_after[k]} for k in changed})
        before = after
    return out
