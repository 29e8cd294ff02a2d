"""What a webhook message says: `{"type", "timestamp", "data"}`, `data` in the REST resources' field names, as the
entity was right after the event (its aggregate loaded at that version, so a replay a month later says what the
first delivery said). Bodies stay under BODY_MAX bytes: the longest texts are shortened, and `data.truncated`
says so.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application

from cosmo.domain.ids import aggregate_id
from cosmo.domain.webhooks import TEST_EVENT
from cosmo.projections.entities import booking_data, import_data, message_data, moment, photo_data, task_data
from cosmo.projections.webhooks.outbox import Due
from cosmo.storage.snapshots import load, load_at

BODY_MAX = 20_000  # bytes
CACHE_SIZE = 2048


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
            found = msgspec.json.encode({"type": due.event_type, "timestamp": moment(due.occurred_at), "data": data})
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
