"""Uploads are re-encoded with no metadata but colour; decodes share a pixel budget; signed URLs parse strictly."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from cosmo.domain.errors import ValidationFailed
from cosmo.media import images
from cosmo.media.images import DecodeBusy, PixelBudget, process
from cosmo.media.store import MediaStore

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="38,43.2N"/></rdf:RDF>'
    b"</x:xmpmeta>"
)
SECRET_WORDS = b"secret-lat-38.72"  # planted in every metadata block: it must appear in no output
# Byte patterns of metadata containers, in whatever format they might be written.
MARKS = [b"Exif", b"http://ns.adobe.com/xap", b"xmpmeta", b"Photoshop 3.0", b"8BIM", b"tEXt", b"iTXt", b"zTXt"]
MARKS += [b"eXIf", b"XMP ", b"EXIF", SECRET_WORDS]


def _exif(*, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = SECRET_WORDS.decode()  # camera make
    exif.get_ifd(0x8769)[36867] = "2025:09:12 08:15:00"
    exif.get_ifd(0x8769)[36881] = "+02:00"
    exif.get_ifd(0x8825)[2] = (38.0, 43.0, 12.0)  # GPS latitude
    if orientation:
        exif[0x0112] = orientation
    return exif


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_with_everything(size: tuple[int, int] = (64, 48), orientation: int | None = None) -> bytes:
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(SECRET_WORDS)) + SECRET_WORDS  # IPTC caption
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(
        out,
        "JPEG",
        exif=_exif(orientation=orientation),
        xmp=XMP + SECRET_WORDS,
        icc_profile=ICC,
        comment=b"<script>alert(1)</script> " + SECRET_WORDS,
        extra=_segment(0xED, b"Photoshop 3.0\x00" + resource),  # APP13
    )
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_everything(*, exif_after_pixels: bool = False) -> bytes:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", SECRET_WORDS.decode())
    text.add_text("Description", SECRET_WORDS.decode(), zip=True)  # zTXt
    text.add_itxt("Title", SECRET_WORDS.decode(), lang="en", tkey="Title")
    text.add_itxt("XML:com.adobe.xmp", (XMP + SECRET_WORDS).decode())
    out = io.BytesIO()
    exif = _exif().tobytes()
    Image.new("RGBA", (64, 48), (0, 0, 255, 128)).save(
        out, "PNG", pnginfo=text, icc_profile=ICC, exif=None if exif_after_pixels else exif
    )
    data = out.getvalue()
    if exif_after_pixels:  # allowed by the PNG spec; pillow only sees it once the pixels are decoded
        data = data[:-12] + _chunk(b"eXIf", exif) + data[-12:]
    return data


def webp_with_everything() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 200, 40)).save(out, "WEBP", exif=_exif(), xmp=XMP + SECRET_WORDS, icc_profile=ICC)
    return out.getvalue()


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """Markers and payloads up to the start of the scan (metadata lives there)."""
    assert data[:2] == b"\xff\xd8"
    found, at = [], 2
    while True:
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        found.append((marker, data[at + 4 : at + 2 + length]))
        if marker == 0xDA:
            return found
        at += 2 + length


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        found.append(data[at + 4 : at + 8])
        at += 12 + length
    return found


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    found, at = [], 12
    while at < len(data):
        length = struct.unpack("<I", data[at + 4 : at + 8])[0]
        found.append(data[at : at + 4])
        at += 8 + length + (length & 1)
    return found


def assert_no_metadata(data: bytes) -> None:
    for mark in MARKS:
        assert mark not in data, mark
    with Image.open(io.BytesIO(data)) as image:
        assert dict(image.getexif()) == {}
        assert not set(image.info) & {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "Comment"}
        if image.format == "JPEG":
            assert b"\xff\xfe" not in data[: data.index(b"\xff\xda")]  # COM marker before the scan
            assert {marker for marker, _ in jpeg_segments(data)} <= {0xE0, 0xE2, 0xDB, 0xC0, 0xC4, 0xDA}
            assert all(
                payload.startswith(b"ICC_PROFILE\0") for marker, payload in jpeg_segments(data) if marker == 0xE2
            )
            assert [name for name, _ in image.applist] in (["APP0"], ["APP0", "APP2"])
        elif image.format == "PNG":
            assert set(png_chunks(data)) <= {b"IHDR", b"PLTE", b"tRNS", b"iCCP", b"IDAT", b"IEND"}
        else:
            assert set(webp_chunks(data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP"}


def icc_of(data: bytes) -> bytes | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.info.get("icc_profile")


@pytest.mark.parametrize(
    "raw",
    [
        jpeg_with_everything(),
        png_with_everything(),
        png_with_everything(exif_after_pixels=True),
        webp_with_everything(),
    ],
    ids=["jpeg", "png", "png-exif-after-pixels", "webp"],
)
def test_every_metadata_block_is_stripped_and_colour_kept(raw: bytes) -> None:
    assert SECRET_WORDS in raw  # the fixture really carries what must go
    result = process(raw)
    assert_no_metadata(result.data)
    assert_no_metadata(result.thumbnail)
    assert icc_of(result.data) == ICC
    assert result.taken_at == datetime(2025, 9, 12, 6, 15, tzinfo=UTC)
    assert (result.width, result.height) == (64, 48)


def test_a_jpeg_comment_does_not_survive() -> None:
    raw = io.BytesIO()
    Image.new("L", (32, 32)).save(raw, "JPEG", comment=b"lat 38.72 lon -9.14")
    result = process(raw.getvalue())
    assert b"38.72" not in result.data
    assert "comment" not in Image.open(io.BytesIO(result.data)).info


def test_orientation_is_applied_and_then_dropped() -> None:
    result = process(jpeg_with_everything(size=(64, 48), orientation=6))
    assert (result.width, result.height) == (48, 64)
    assert Image.open(io.BytesIO(result.data)).size == (48, 64)
    assert_no_metadata(result.data)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_modes_reencode(mode: str) -> None:
    raw = io.BytesIO()
    image = Image.new(mode, (500, 300))
    if mode == "P":
        image.info["transparency"] = 0
    image.save(raw, "PNG")
    result = process(raw.getvalue())
    assert Image.open(io.BytesIO(result.thumbnail)).size == (400, 240)


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, float], PixelBudget]:
    def install(pixels: int, timeout: float) -> PixelBudget:
        made = PixelBudget(pixels, timeout)
        monkeypatch.setattr(images, "DECODES", made)
        return made

    return install


@pytest.fixture
def inside(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """Counts the decodes holding pixels at once, by hooking the encoder (which runs on decoded pixels)."""
    state = {"now": 0, "most": 0, "hold": None}
    lock, real = threading.Lock(), images._encoded

    def encoded(image: Image.Image, kind: str) -> bytes:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            if state["hold"] is not None:
                state["hold"](image)
            return real(image, kind)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(images, "_encoded", encoded)
    yield state


def run_together(*raws: bytes) -> list[BaseException | images.Processed]:
    results: list = [None] * len(raws)

    def one(i: int) -> None:
        try:
            results[i] = process(raws[i])
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(raws))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_decodes_over_the_budget_wait_for_each_other(budget, inside) -> None:
    budget(15_000, 5.0)  # two 100x100 images do not fit together
    inside["hold"] = lambda image: time.sleep(0.2)
    results = run_together(png((100, 100)), png((100, 100)))
    assert all(isinstance(r, images.Processed) for r in results)
    assert inside["most"] == 1


def test_decodes_within_the_budget_run_together(budget, inside) -> None:
    budget(20_000, 5.0)
    met = threading.Barrier(2, timeout=5)  # breaks (and fails the test) unless both are inside at once
    inside["hold"] = lambda image: met.wait()
    results = run_together(png((100, 100)), png((100, 100)))
    assert all(isinstance(r, images.Processed) for r in results), results
    assert inside["most"] == 2


def test_an_image_over_the_budget_decodes_alone(budget) -> None:
    budget(100, 0.05)
    assert process(png((300, 200))).width == 300


def test_waiting_too_long_is_busy_and_the_budget_comes_back(budget, inside) -> None:
    budget(15_000, 0.1)
    entered, leave = threading.Event(), threading.Event()
    inside["hold"] = lambda image: (entered.set(), leave.wait(5))
    holder = threading.Thread(target=process, args=(png((100, 100)),))
    holder.start()
    assert entered.wait(5)
    inside["hold"] = None
    started = time.monotonic()
    with pytest.raises(DecodeBusy):
        process(png((100, 100)))
    assert 0.09 < time.monotonic() - started < 2
    leave.set()
    holder.join(5)
    assert process(png((100, 100))).width == 100  # nothing leaked: the budget is whole again


def test_a_failed_decode_gives_the_budget_back(budget) -> None:
    budget(15_000, 0.1)
    with pytest.raises(ValidationFailed):
        process(png((100, 100))[:-40])  # truncated pixels
    assert process(png((100, 100))).width == 100


def queued(budget: PixelBudget, waiters: int) -> None:
    deadline = time.monotonic() + 5
    while len(budget._queue) < waiters:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_large_waiter_is_not_overtaken_by_small_ones() -> None:
    budget = PixelBudget(100, timeout=5)
    order: list[str] = []
    small_in, release_small = threading.Event(), threading.Event()

    def small_holder() -> None:
        with budget.reserve(10):
            small_in.set()
            release_small.wait(5)

    def take(name: str, pixels: int) -> None:
        with budget.reserve(pixels):
            order.append(name)

    first = threading.Thread(target=small_holder)
    first.start()
    assert small_in.wait(5)
    large = threading.Thread(target=take, args=("large", 100))
    large.start()
    queued(budget, 1)
    late = threading.Thread(target=take, args=("small", 10))  # would fit beside the holder, but came later
    late.start()
    queued(budget, 2)
    assert order == []
    release_small.set()
    for thread in (first, large, late):
        thread.join(5)
    assert order == ["large", "small"]


# Signed URLs


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path, "test-secret-key-that-is-long-enough-for-hs256", ttl_seconds=60)


def signed(store: MediaStore, name: str) -> tuple[str, str]:
    query = parse_qs(store.signed_query(name))
    return query["expires"][0], query["signature"][0]


def test_a_good_signature_opens_the_file(store: MediaStore) -> None:
    name = store.new_name(7, 3, "jpg")
    store.save(name, b"jpeg bytes")
    expires, signature = signed(store, name)
    found = store.open_signed(name, expires, signature)
    assert found is not None and found[0].read_bytes() == b"jpeg bytes" and found[1] == "image/jpeg"


@pytest.mark.parametrize(
    "expires",
    [
        "²",
        "9" * 5000,
        "1" * 13,
        "\x00",
        "1700000000\x00",
        "\u0661\u0667" + "\u0660" * 8,  # Arabic-Indic digits
        "",
        "-1",
        "+99999999999",
        " 99999999999",
        "1e11",
    ],
)
def test_bad_expiries_are_refused_not_raised(store: MediaStore, expires: str) -> None:
    name = store.new_name(7, 3, "jpg")
    store.save(name, b"x")
    _, signature = signed(store, name)
    assert store.open_signed(name, expires, signature) is None


def test_an_expired_url_is_refused(store: MediaStore) -> None:
    name = store.new_name(7, 3, "png")
    store.save(name, b"x")
    query = parse_qs(store.signed_query(name, now=1_000_000))
    assert store.open_signed(name, query["expires"][0], query["signature"][0]) is None


@pytest.mark.parametrize(
    "bad",
    ["", "\x00", "é" * 32, "\ud800" * 32, "A" * 31, "A" * 33, "A" * 100_000, "=" * 32, "\n"],
)
def test_any_signature_or_name_is_refused_not_raised(store: MediaStore, bad: str) -> None:
    name = store.new_name(7, 3, "webp")
    store.save(name, b"x")
    expires, signature = signed(store, name)
    assert store.open_signed(name, expires, bad) is None
    assert store.open_signed(bad, expires, signature) is None
    if bad:
        assert store.open_signed(name + bad, expires, signature) is None
    assert store.open_signed(bad, bad, bad) is None


@pytest.mark.parametrize(
    "name",
    [
        "task_images/\u0661/3-abc.jpg",
        "task_images/7/3-abc.jpg\n",
        "task_images/7/../../x.jpg",
        "task_images/7/" + "a" * 5000 + ".jpg",
    ],
)
def test_odd_names_are_refused_even_when_signed(store: MediaStore, name: str) -> None:
    expires, signature = signed(store, name)  # a signature for the name cannot make it a media path
    assert store.open_signed(name, expires, signature) is None


def test_an_overflowing_socket_queue_is_emptied_and_marked() -> None:
    import asyncio

    from cosmo.live.broker import OVERFLOWED, Hub

    async def run() -> None:
        hub = Hub()
        queue = hub.register(["room:1"], maxsize=2)
        for n in range(3):
            hub.deliver("room:1", b"%d" % n)
        assert queue.get_nowait() == (OVERFLOWED, b"") and queue.empty()
        assert not hub.listening  # no longer fed
        hub.deliver("room:1", b"later")
        assert queue.empty()

    asyncio.run(run())
