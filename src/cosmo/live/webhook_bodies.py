"""What a webhook message says: `{"type", "timestamp", "data"}`, `data` in the REST resources' field names, as the
entity was right after the event (its aggregate loaded at that version, so a replay a month later says what the
first delivery said). Bodies stay under BODY_MAX bytes: the longest texts are shortened, and `data.truncated`
says so.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application

from cosmo.domain.bookings import nights
from cosmo.domain.ids import aggregate_id
from cosmo.domain.webhooks import TEST_EVENT
from cosmo.projections.webhooks.outbox import Due
from cosmo.storage.snapshots import load, load_at

BODY_MAX = 20_000  # bytes
CACHE_SIZE = 2048


def _moment(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def task_data(task: Any) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "task_type": task.task_type,
        "priority": task.priority,
        "assigned_to": task.assigned_to,
        "property": task.property_id,
        "unit": task.unit_id,
        "due_date": _moment(task.due_date),
        "created_by": task.created_by,
        "created_at": _moment(task.created_on),
        "updated_at": _moment(task.modified_on),
    }


def photo_data(task: Any, photo_id: int) -> dict[str, Any]:
    photo = task.photos.get(photo_id) or {}
    return {
        "id": photo_id,
        "task": task.task_id,
        "photo_type": photo.get("photo_type"),
        "photo_status": photo.get("status", "deleted"),
        "sequence_number": photo.get("sequence_number"),
        "is_primary": photo.get("is_primary", False),
        "checklist_item": photo.get("checklist_item_id"),
        "uploaded_by": photo.get("uploaded_by"),
    }


def booking_data(booking: Any, prop: Any) -> dict[str, Any]:
    unit = (prop.units.get(booking.unit_id) or {}) if prop is not None and booking.unit_id is not None else {}
    timezone = prop.timezone if prop is not None else "UTC"
    return {
        "id": booking.booking_id,
        "external_code": booking.external_code,
        "source": booking.source,
        "guest_name": booking.guest_name,
        "guest_contact": booking.guest_contact,
        "check_in_date": _moment(booking.check_in),
        "check_out_date": _moment(booking.check_out),
        "property": booking.property_id,
        "property_name": prop.name if prop is not None else "",
        "unit": unit.get("unit_number"),
        "status": booking.status,
        "total_nights": nights(booking.check_in, booking.check_out, timezone),
        "adults": booking.adults,
        "children": booking.children,
        "infants": booking.infants,
        "earnings": str(booking.earnings) if booking.earnings is not None else None,
        "earnings_currency": booking.earnings_currency,
        "booked_at": _moment(booking.booked_at),
        "notes": booking.notes,
        "created_at": _moment(booking.created_on),
        "updated_at": _moment(booking.modified_on),
    }


def import_data(found: Any) -> dict[str, Any]:
    return {
        "import_id": found.name,
        "status": found.status,
        "file_name": found.file_name,
        "property_id": found.property_id,
        "total_rows": found.total_rows,
        "processed_rows": found.refused_rows + found.position,
        "conflicts_found": len(found.conflicts),
        "created": found.created,
        "updated": found.updated,
        "unchanged": found.unchanged,
        "error_count": found.error_count,
        "reason": found.reason,
    }


def message_data(message: Any) -> dict[str, Any]:
    attachment = message.attachment or {}
    return {
        "id": str(message.id),
        "room": str(message.room_id),
        "sender": message.sender_id,
        "message_type": message.message_type,
        "content": message.content,
        "reply_to": str(message.reply_to) if message.reply_to else None,
        "attachment_name": attachment.get("name"),
        "created_at": _moment(message.created_on),
    }


def fit(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """`data` shortened until its JSON is at most `limit` bytes: the longest text halved at each step."""
    if len(msgspec.json.encode(data)) <= limit:
        return data
    data = dict(data, truncated=True)
    while len(msgspec.json.encode(data)) > limit:
        texts = [(len(v), k) for k, v in data.items() if isinstance(v, str) and v]
        if not texts:
            break
        _, key = max(texts)
        data[key] = data[key][: len(data[key]) // 2]
    return data


class Bodies:
    """Builds (and keeps a while) the body of each message: reading the log, so call it off the event loop."""

    def __init__(self, app: Application):
        self._app = app
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def cached(self, due: Due) -> bytes | None:
        """The body if it was built lately (no need to leave the event loop for it)."""
        return self._cache.get(due.message_id)

    def body(self, due: Due) -> bytes:
        found = self._cache.get(due.message_id)
        if found is None:
            data = fit(self.data(due), BODY_MAX - 200)
            found = msgspec.json.encode({"type": due.event_type, "timestamp": _moment(due.occurred_at), "data": data})
            self._cache[due.message_id] = found
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    def _at(self, originator_id: str, version: int) -> Any:
        return load(self._app, UUID(originator_id), version)

    def _property(self, property_id: int, moment: datetime) -> Any:
        """The booking's property as it was when the event happened (its name and unit numbers then)."""
        try:
            return load_at(self._app, aggregate_id("property", property_id), moment)
        except Exception:  # an unreadable property: the booking is still worth telling
            return None

    def data(self, due: Due) -> dict[str, Any]:
        kind = due.event_type
        if kind == TEST_EVENT:
            return {"webhook": due.extra["webhook_id"], "message": "A test delivery from Cosmo."}
        found = self._at(due.originator_id, due.originator_version)
        if kind.startswith("task."):
            return {**task_data(found), **due.extra}
        if kind.startswith("photo."):
            data = photo_data(found, due.extra["photo_id"])
            if "review_note" in due.extra:
                data["review_note"] = due.extra["review_note"]
            return data
        if kind == "booking.import_completed":
            return import_data(found)
        if kind.startswith("booking."):
            return {**booking_data(found, self._property(found.property_id, due.occurred_at)), **due.extra}
        if kind == "message.created":
            return message_data(found)
        raise ValueError(f"no body for {kind}")
