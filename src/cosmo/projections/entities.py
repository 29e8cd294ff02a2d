"""Entities as the REST API names their fields, built from their aggregates (at any version): what webhook bodies
carry and what the audit API's `as_of` shows. Pure functions of the aggregates; the caller loads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cosmo.domain.bookings import nights


def moment(value: datetime | None) -> str | None:
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
        "due_date": moment(task.due_date),
        "created_by": task.created_by,
        "created_at": moment(task.created_on),
        "updated_at": moment(task.modified_on),
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
        "check_in_date": moment(booking.check_in),
        "check_out_date": moment(booking.check_out),
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
        "booked_at": moment(booking.booked_at),
        "notes": booking.notes,
        "created_at": moment(booking.created_on),
        "updated_at": moment(booking.modified_on),
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
        "created_at": moment(message.created_on),
    }
