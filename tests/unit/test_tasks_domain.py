"""The Task aggregate's rules, without storage: transitions and who may make them, completion requirements,
claiming, checklist values."""

from __future__ import annotations

import pytest

from cosmo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.tasks import STATUSES, TRANSITIONS, Task, group_covers

STAFF, OTHER, BOSS = 7, 8, 1


def make(
    checklist_items: list[dict] | None = None,
    assigned_to: int | None = STAFF,
    task_type: str = "cleaning",
    task_id: int = 1,
) -> Task:
    checklist = None
    if checklist_items is not None:
        checklist = {"template_id": 1, "template_name": "T", "items": checklist_items}
    return Task(
        task_id=task_id,
        title="t",
        description="",
        task_type=task_type,
        priority="medium",
        property_id=None,
        unit_id=None,
        assigned_to=assigned_to,
        due_date=None,
        checklist=checklist,
        actor_id=BOSS,
    )


def photo(photo_type: str = "before") -> dict:
    """What an upload records of a photo."""
    return {
        "photo_type": photo_type,
        "checklist_item_id": None,
        "description": "",
        "file": "f",
        "thumbnail": "t",
        "size_bytes": 1,
        "width": 1,
        "height": 1,
        "taken_at": None,
    }


def item(item_id: int, item_type: str = "check", required: bool = True) -> dict:
    return {"id": item_id, "text": f"item {item_id}", "item_type": item_type, "is_required": required, "room": ""}


def test_every_move_not_in_the_table_is_refused() -> None:
    for start in STATUSES:
        for target in STATUSES:
            if start == target or (start, target) in TRANSITIONS:
                continue
            task = make()
            task.status = start
            with pytest.raises(ValidationFailed):
                task.change_status(target, BOSS, "manager")


def test_worker_moves_and_admin_moves() -> None:
    task = make()
    with pytest.raises(PermissionDenied):
        task.change_status("in-progress", OTHER, "staff")
    with pytest.raises(PermissionDenied):
        task.change_status("in-progress", BOSS, "viewer")
    task.change_status("in-progress", STAFF, "staff")
    task.change_status("completed", STAFF, "staff")
    with pytest.raises(PermissionDenied):
        task.change_status("in-progress", STAFF, "staff")  # reopening is for managers
    task.change_status("in-progress", BOSS, "manager")
    with pytest.raises(PermissionDenied):
        task.change_status("canceled", STAFF, "staff")
    task.change_status("canceled", BOSS, "superuser")
    assert [type(e).__name__ for e in task.collect_events()][-4:] == ["StatusChanged"] * 4


def test_completion_needs_required_items_and_photos() -> None:
    task = make([item(1), item(2, "photo_required"), item(3, required=False)])
    task.change_status("in-progress", STAFF, "staff")
    with pytest.raises(ValidationFailed) as refused:
        task.change_status("completed", STAFF, "staff")
    assert set(refused.value.details) == {"checklist", "photos"}
    assert len(refused.value.details["checklist"]) == 2  # items 1 and 2; item 3 is optional
    task.update_item(1, {"completed": True}, STAFF, "staff")
    task.update_item(2, {"completed": True}, STAFF, "staff")
    with pytest.raises(ValidationFailed) as refused:
        task.change_status("completed", STAFF, "staff")
    assert list(refused.value.details) == ["photos"]
    proof = {**photo("checklist"), "checklist_item_id": 2}
    task.add_photo(50, proof, STAFF, "staff")
    task.review_photo(50, "rejected", "blurred", BOSS, "manager")
    with pytest.raises(ValidationFailed):  # a rejected photo is no proof
        task.change_status("completed", STAFF, "staff")
    task.add_photo(51, proof, STAFF, "staff")
    task.change_status("completed", STAFF, "staff")
    assert task.status == "completed"


def test_photo_sequence_primary_and_deletion() -> None:
    task = make()

    def add(photo_id: int, photo_type: str, by: int = STAFF) -> dict:
        task.add_photo(photo_id, photo(photo_type), by, "staff" if by == STAFF else "manager")
        return task.photos[photo_id]

    assert (add(1, "before")["sequence_number"], task.photos[1]["is_primary"]) == (1, True)
    assert (add(2, "before")["sequence_number"], task.photos[2]["is_primary"]) == (2, False)
    assert (add(3, "after")["sequence_number"], task.photos[3]["is_primary"]) == (1, True)
    add(4, "before", by=BOSS)
    with pytest.raises(PermissionDenied):
        task.delete_photo(4, STAFF, "staff")  # not the uploader
    with pytest.raises(PermissionDenied):
        task.review_photo(1, "approved", "", STAFF, "staff")
    task.delete_photo(1, STAFF, "staff")
    assert task.photos[2]["is_primary"] and not task.photos[4]["is_primary"]
    assert add(5, "before")["sequence_number"] == 4
    task.delete_photo(5, STAFF, "staff")
    assert add(6, "before")["sequence_number"] == 5  # never reused
    with pytest.raises(NotFound):
        task.delete_photo(1, BOSS, "manager")


def test_claiming() -> None:
    assert group_covers("general", "maintenance") and group_covers("cleaning", "cleaning")
    assert not group_covers("cleaning", "laundry") and not group_covers("none", "cleaning")
    task = make(assigned_to=None)
    with pytest.raises(PermissionDenied):
        task.claim(STAFF, "staff", "laundry")
    with pytest.raises(PermissionDenied):
        task.claim(BOSS, "manager", "general")
    task.claim(STAFF, "staff", "cleaning")
    assert task.assigned_to == STAFF
    with pytest.raises(Conflict):
        task.claim(OTHER, "staff", "general")


def test_checklist_values_and_unknown_items() -> None:
    task = make([item(1, "number_input"), item(2, "text_input")])
    with pytest.raises(ValidationFailed):
        task.update_item(1, {"value": "twelve"}, STAFF, "staff")
    with pytest.raises(ValidationFailed):
        task.update_item(1, {"value": "nan"}, STAFF, "staff")
    task.update_item(1, {"value": 12.5}, STAFF, "staff")
    assert task.item_states[1]["value"] == "12.5"
    with pytest.raises(NotFound):
        task.update_item(99, {"completed": True}, STAFF, "staff")
    with pytest.raises(PermissionDenied):
        task.update_item(2, {"value": "x"}, OTHER, "staff")
    before = len(task.collect_events())
    task.update_item(1, {"value": "12.5"}, STAFF, "staff")  # no change, no event
    assert len(task.collect_events()) == 0 and before > 0
