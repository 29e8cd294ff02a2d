"""Photo proof through the API: uploads decoded and re-encoded, signed URLs, limits, review, deletion, and photos
as proof for checklist items."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.conftest import Api, Backend, make_api


def jpeg(size: tuple[int, int] = (64, 48), camera: str = "SecretCam") -> bytes:
    image = Image.new("RGB", size, "red")
    exif = Image.Exif()
    exif[0x0110] = camera
    exif.get_ifd(0x8769)[36867] = "2025:09:12 08:15:00"
    exif.get_ifd(0x8769)[36881] = "+02:00"
    exif.get_ifd(0x8825)[2] = (38.0, 43.0, 12.0)  # GPS latitude: must not survive
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def setup(api: Api, admin: dict[str, str]) -> dict:
    api.make_user("boss", "manager", "none")
    cleo_id = api.make_user("cleo", "staff", "cleaning")
    api.make_user("carl", "staff", "cleaning")
    api.make_user("vic", "viewer", "none")
    h = {name: api.auth(name) for name in ("boss", "cleo", "carl", "vic")}
    template = api.post(
        "/api/checklist-templates/",
        json={
            "name": "Proof",
            "task_type": "cleaning",
            "items": [{"text": "Photo of the bathroom", "item_type": "photo_required", "is_required": True}],
        },
        headers=h["boss"],
    ).json()
    task = api.post(
        "/api/tasks/",
        json={
            "title": "Clean 101",
            "task_type": "cleaning",
            "assigned_to": cleo_id,
            "checklist_template": template["id"],
        },
        headers=h["boss"],
    ).json()
    return {"h": h, "task": task, "cleo_id": cleo_id}


def upload(api: Api, task_id: int, headers: dict, data: bytes, name: str = "p.jpg", **fields):
    form = {"photo_type": "before", **{k: str(v) for k, v in fields.items()}}
    return api.post(
        f"/api/tasks/{task_id}/images/create/",
        files={"image": (name, data, "image/jpeg")},
        data=form,
        headers=headers,
    )


def test_upload_answers_every_field_and_strips_exif(api: Api, setup) -> None:
    cleo, tid = setup["h"]["cleo"], setup["task"]["id"]
    r = upload(api, tid, cleo, jpeg((640, 480)), description="Initial room condition")
    assert r.status_code == 201, r.text
    photo = r.json()
    expected = {
        "id", "task", "image", "thumbnail", "photo_type", "photo_type_display", "photo_status",
        "photo_status_display", "sequence_number", "is_primary", "description", "checklist_item", "uploaded_at",
        "uploaded_by", "uploaded_by_username", "size_bytes", "width", "height", "taken_at", "review_note",
        "reviewed_by", "reviewed_at",
    }  # fmt: skip
    assert set(photo) == expected
    assert photo["photo_type_display"] == "Before Photo" and photo["photo_status_display"] == "Pending Review"
    assert (photo["sequence_number"], photo["is_primary"]) == (1, True)
    assert (photo["width"], photo["height"]) == (640, 480)
    assert photo["uploaded_by"] == setup["cleo_id"] and photo["uploaded_by_username"] == "cleo"
    assert photo["taken_at"].startswith("2025-09-12T06:15:00")  # 08:15 at +02:00
    # The stored file: a clean re-encoded JPEG, fetched with no credentials through the signed URL.
    url = urlsplit(photo["image"])
    served = api.get(f"{url.path}?{url.query}")
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/jpeg")
    assert len(served.content) == photo["size_bytes"]
    stored = Image.open(io.BytesIO(served.content))
    assert stored.size == (640, 480) and dict(stored.getexif()) == {}
    assert b"SecretCam" not in served.content
    thumb = urlsplit(photo["thumbnail"])
    small = Image.open(io.BytesIO(api.get(f"{thumb.path}?{thumb.query}").content))
    assert max(small.size) <= 400
    second = upload(api, tid, cleo, png(), name="p.png").json()
    assert (second["sequence_number"], second["is_primary"]) == (2, False)
    after = upload(api, tid, cleo, jpeg(), photo_type="after").json()
    assert (after["sequence_number"], after["is_primary"]) == (1, True)
    listed = api.get(f"/api/tasks/{tid}/images/", headers=cleo).json()
    assert listed["count"] == 3
    one = api.get(f"/api/tasks/{tid}/images/{second['id']}/", headers=cleo).json()
    assert {k: v for k, v in one.items() if k not in ("image", "thumbnail")} == {
        k: v for k, v in second.items() if k not in ("image", "thumbnail")
    }
    assert api.get(f"/api/tasks/{tid + 1}/images/{second['id']}/", headers=cleo).status_code == 404
    detail = api.get(f"/api/staff/tasks/{tid}/", headers=cleo).json()
    assert {i["id"] for i in detail["images"]} == {photo["id"], second["id"], after["id"]}


def test_signed_urls_refuse_tampering_and_expiry(api: Api, setup) -> None:
    photo = upload(api, setup["task"]["id"], setup["h"]["cleo"], jpeg()).json()
    url = urlsplit(photo["image"])
    assert api.get(url.path).status_code == 403
    forged = url.query.replace("signature=", "signature=x")
    assert api.get(f"{url.path}?{forged}").status_code == 403
    other = urlsplit(photo["thumbnail"]).path
    assert api.get(f"{other}?{url.query}").status_code == 403  # a signature is for one file
    store = api.runtime.media
    name = url.path.removeprefix("/media/")
    expired = store.signed_query(name, now=1_000_000)
    r = api.get(f"{url.path}?{expired}")
    assert r.status_code == 403 and r.json() == {"error": "Permission denied"}
    assert api.get("/media/../cosmo.db?expires=9999999999&signature=x").status_code in (403, 404)


def test_bad_uploads_are_400s(api: Api, setup) -> None:
    cleo, tid = setup["h"]["cleo"], setup["task"]["id"]
    cases = [
        upload(api, tid, cleo, b"GIF89a not really", name="x.jpg"),
        upload(api, tid, cleo, b"\xff\xd8\xff\xe0 truncated jpeg"),
        upload(api, tid, cleo, b""),
    ]
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    cases.append(upload(api, tid, cleo, gif.getvalue(), name="x.gif"))
    bomb = io.BytesIO()
    Image.new("L", (8000, 6000)).save(bomb, "PNG")  # 48 megapixels in 47 kB
    cases.append(upload(api, tid, cleo, bomb.getvalue(), name="bomb.png"))
    for r in cases:
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "Validation failed" and "image" in r.json()["details"]
    assert "megapixels" in cases[-1].json()["details"]["image"][0]
    r = upload(api, tid, cleo, jpeg(), photo_type="selfie")
    assert r.status_code == 400 and "photo_type" in r.json()["details"]
    r = upload(api, tid, cleo, jpeg(), checklist_item=999999)
    assert r.status_code == 400 and "checklist_item" in r.json()["details"]
    no_file = {"photo_type": (None, "before")}  # multipart, but no image part
    r = api.post(f"/api/tasks/{tid}/images/create/", files=no_file, headers=cleo)
    assert r.status_code == 400 and "image" in r.json()["details"]
    r = api.post(f"/api/tasks/{tid}/images/create/", data={"photo_type": "before"}, headers=cleo)
    assert r.status_code == 400
    assert api.get(f"/api/tasks/{tid}/images/", headers=cleo).json()["count"] == 0


def test_oversized_upload_is_413(api: Api, setup) -> None:
    r = upload(api, setup["task"]["id"], setup["h"]["cleo"], b"\0" * (26 * 1024 * 1024))
    assert r.status_code == 413


def test_who_may_upload_review_and_delete(api: Api, setup) -> None:
    h, tid = setup["h"], setup["task"]["id"]
    assert upload(api, tid, h["vic"], jpeg()).status_code == 403
    assert upload(api, tid, h["carl"], jpeg()).status_code == 404  # not his task, not visible to him
    mine = upload(api, tid, h["cleo"], jpeg()).json()
    bosses = upload(api, tid, h["boss"], jpeg()).json()
    path = f"/api/tasks/{tid}/images"
    assert api.patch(f"{path}/{mine['id']}/", json={"photo_status": "approved"}, headers=h["cleo"]).status_code == 403
    r = api.patch(f"{path}/{mine['id']}/", json={"photo_status": "approved", "review_note": "Good"}, headers=h["boss"])
    assert r.status_code == 200
    assert (r.json()["photo_status"], r.json()["photo_status_display"], r.json()["review_note"]) == (
        "approved",
        "Approved",
        "Good",
    )
    assert r.json()["reviewed_at"] is not None
    assert api.patch(f"{path}/{mine['id']}/", json={"photo_status": "pending"}, headers=h["boss"]).status_code == 400
    assert api.delete(f"{path}/{bosses['id']}/", headers=h["cleo"]).status_code == 403
    assert api.delete(f"{path}/{mine['id']}/", headers=h["cleo"]).status_code == 204
    assert api.get(f"{path}/{mine['id']}/", headers=h["cleo"]).status_code == 404
    assert api.get(f"{path}/", headers=h["vic"]).json()["count"] == 1


def test_photo_required_items_need_a_photo(api: Api, setup) -> None:
    cleo, tid = setup["h"]["cleo"], setup["task"]["id"]
    item = api.get(f"/api/staff/tasks/{tid}/", headers=cleo).json()["checklist"]["items"][0]
    assert api.patch(f"/api/staff/tasks/{tid}/", json={"status": "in-progress"}, headers=cleo).status_code == 200
    api.patch(f"/api/staff/tasks/{tid}/checklist/{item['id']}/", json={"completed": True}, headers=cleo)
    r = api.patch(f"/api/staff/tasks/{tid}/", json={"status": "completed"}, headers=cleo)
    assert r.status_code == 400 and "Photo of the bathroom" in r.json()["details"]["photos"][0]
    upload(api, tid, cleo, jpeg(), photo_type="checklist", checklist_item=item["id"])
    r = api.patch(f"/api/staff/tasks/{tid}/", json={"status": "completed"}, headers=cleo)
    assert r.status_code == 200, r.text


def test_uploads_count_against_the_upload_throttle(backend: Backend) -> None:
    for api in make_api(backend, COSMO_THROTTLE_UPLOAD="2/hour"):
        api.make_user("boss", "manager", "none")
        boss = api.auth("boss")
        tid = api.post("/api/tasks/", json={"title": "t", "task_type": "other"}, headers=boss).json()["id"]
        codes = [upload(api, tid, boss, b"not an image").status_code for _ in range(3)]
        assert codes == [400, 400, 429]
