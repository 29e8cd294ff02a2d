"""Photo proof: the kinds and review states of a task's photos, and the limits an upload must meet."""

from __future__ import annotations

PHOTO_TYPES = ("before", "after", "during", "general", "reference", "damage", "checklist")
PHOTO_TYPE_DISPLAY = {
    "before": "Before Photo",
    "after": "After Photo",
    "during": "During Photo",
    "general": "General Photo",
    "reference": "Reference Photo",
    "damage": "Damage Photo",
    "checklist": "Checklist Photo",
}
PHOTO_STATUSES = ("pending", "approved", "rejected", "archived")
PHOTO_STATUS_DISPLAY = {
    "pending": "Pending Review",
    "approved": "Approved",
    "rejected": "Rejected",
    "archived": "Archived",
}
# What a manager's review may set.
REVIEW_STATUSES = ("approved", "rejected", "archived")
# Photos in these states count as proof for a photo-required checklist item.
PROOF_STATUSES = ("pending", "approved")
MAX_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000
DESCRIPTION_MAX = 1000
REVIEW_NOTE_MAX = 1000
