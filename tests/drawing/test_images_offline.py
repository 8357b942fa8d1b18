"""Offline preview image model and the numbered contact sheet."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from bot.drawing.offline_images import LABEL, OfflinePreviewImageModel, preview_lines, preview_size
from bot.engine.contact_sheet import BACKGROUND, BADGE, LETTERBOX, contact_sheet, sheet_gap, sheet_layout
from bot.engine.ports import ASPECT_RATIOS, ImageRequest

FOX = ImageRequest("a red fox in the snow, golden hour", aspect_ratio="1:1", seed=42)


def decode(data: bytes) -> Image.Image:
    """PNG bytes as an RGB image (and proof they are a PNG)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """RGB pixels of an image, row by row."""
    data = image.convert("RGB").tobytes()
    return [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]


def near(pixel: tuple[int, ...], colour: tuple[int, ...], tolerance: int = 40) -> bool:
    """Whether two RGB colours are close."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour[:3], strict=True))


# offline preview -------------------------------------------------------------------------------------------
def test_same_prompt_and_seed_give_the_same_bytes() -> None:
    model = OfflinePreviewImageModel()
    first, second = model.generate(FOX)[0], OfflinePreviewImageModel().generate(FOX)[0]
    assert first.data == second.data
    assert (first.seed, first.model_id, first.mime_type) == (42, "offline", "image/png")
    assert model.model_id == "offline" and model.is_offline is True


def test_seed_and_prompt_change_the_image() -> None:
    model = OfflinePreviewImageModel()
    base = model.generate(FOX)[0].data
    other_seed = model.generate(ImageRequest(FOX.prompt, seed=43))[0].data
    other_prompt = model.generate(ImageRequest("a blue whale", seed=42))[0].data
    assert len({base, other_seed, other_prompt}) == 3


def test_count_gives_consecutive_seeds() -> None:
    images = OfflinePreviewImageModel().generate(ImageRequest("a cat", seed=7, count=3))
    assert [image.seed for image in images] == [7, 8, 9]
    assert len({image.data for image in images}) == 3


@pytest.mark.parametrize("aspect", ASPECT_RATIOS)
def test_size_follows_the_aspect_ratio(aspect: str) -> None:
    (image,) = OfflinePreviewImageModel().generate(ImageRequest("a cat", aspect_ratio=aspect))
    decoded = decode(image.data)
    assert decoded.size == (image.width, image.height) == preview_size(aspect)
    assert max(decoded.size) == 768
    assert min(decoded.size) % 8 == 0
    w, h = (int(part) for part in aspect.split(":"))
    assert image.width / image.height == pytest.approx(w / h, rel=0.03)


def test_label_prompt_seed_and_size_are_drawn() -> None:
    lines = preview_lines(FOX.prompt, 42, 768, 768, chars_per_line=40)
    assert " ".join(lines).startswith(FOX.prompt)
    assert lines[-1] == "seed 42 · 768x768"
    assert LABEL == "OFFLINE PREVIEW — no image model was called"

    image = decode(OfflinePreviewImageModel().generate(FOX)[0].data)
    banner = image.crop((0, 0, 768, 60))
    yellow = sum(near(p, (250, 204, 21)) for p in pixels(banner))
    ink = sum(max(p) < 90 for p in pixels(banner))
    assert yellow > 0.6 * banner.width * banner.height  # a yellow banner across the top …
    assert ink > 800  # … with dark lettering on it
    blank = decode(OfflinePreviewImageModel().generate(ImageRequest("", seed=42))[0].data)
    text_area = (40, 100, 700, 200)
    difference = ImageStat.Stat(ImageChops.difference(image.crop(text_area), blank.crop(text_area)))
    assert max(difference.mean) > 2  # the prompt's text changes the panel


def test_long_prompts_are_cut_to_fit() -> None:
    lines = preview_lines("word " * 500, 1, 328, 768, chars_per_line=30, max_lines=6)
    assert len(lines) == 6
    assert lines[3].endswith("...")


def test_invalid_aspect_ratio_is_refused() -> None:
    with pytest.raises(ValueError, match="16:9"):
        OfflinePreviewImageModel().generate(ImageRequest("a cat", aspect_ratio="wide"))


# contact sheet ---------------------------------------------------------------------------------------------
def previews(count: int) -> list[bytes]:
    """Previews of mixed aspect ratios."""
    model = OfflinePreviewImageModel()
    aspects = ["1:1", "16:9", "9:16", "21:9", "2:3"]
    return [
        model.generate(ImageRequest(f"idea {i}", aspect_ratio=aspects[i % len(aspects)], seed=i))[0].data
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "columns", "grid"), [(1, None, (1, 1)), (4, None, (2, 2)), (7, None, (3, 3)), (9, 5, (5, 2))]
)
def test_sheet_dimensions_and_numbered_tiles(count: int, columns: int | None, grid: tuple[int, int]) -> None:
    tile = 160
    sheet = decode(contact_sheet(previews(count), columns=columns, tile=tile))
    cols, rows = grid
    gap = sheet_gap(tile)
    assert sheet_layout(count, columns) == grid
    assert sheet.size == (cols * tile + (cols + 1) * gap, rows * tile + (rows + 1) * gap)
    badges = 0
    for slot in range(cols * rows):
        row, col = divmod(slot, cols)
        left, top = gap + col * (tile + gap), gap + row * (tile + gap)
        margin, diameter = max(4, tile // 32), max(24, tile // 4)  # the badge sits bottom-right
        badge_x, badge_top = left + tile - margin - diameter // 2, top + tile - margin - diameter
        badge_edge = sheet.getpixel((badge_x, badge_top + 3))
        assert isinstance(badge_edge, tuple)
        if slot < count:
            badges += near(badge_edge, BADGE)
        else:
            assert sheet.getpixel((left + tile // 2, top + tile // 2)) == BACKGROUND
    assert badges == count


def test_tiles_are_letterboxed_and_labelled() -> None:
    wide = previews(2)[1]  # 16:9
    tile = 256
    plain = decode(contact_sheet([wide], tile=tile))
    gap = sheet_gap(tile)
    assert plain.getpixel((gap + tile - 5, gap + 5)) == LETTERBOX  # above the 16:9 picture
    assert plain.getpixel((gap + tile - 5, gap + tile - 5)) == LETTERBOX  # below it
    labelled = decode(contact_sheet([wide], labels=["#1 fox"], tile=tile))
    strip = (gap, gap + tile - 16, gap + tile, gap + tile)
    assert labelled.crop(strip).tobytes() != plain.crop(strip).tobytes()


def test_sheet_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])
    with pytest.raises(ValueError, match="labels"):
        contact_sheet(previews(2), labels=["only one"])
    with pytest.raises(ValueError, match="image 2"):
        contact_sheet([previews(1)[0], b"not a picture"])


def test_transparency_shows_on_a_checkerboard() -> None:
    from bot.engine.contact_sheet import CHECKER_DARK, CHECKER_LIGHT

    clear = io.BytesIO()
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(clear, format="PNG")
    tile = 256
    sheet = decode(contact_sheet([clear.getvalue()], labels=["icon"], tile=tile, numbered=False))
    gap = sheet_gap(tile)
    square = max(8, tile // 24)
    row = [sheet.getpixel((gap + x, gap + 2)) for x in range(0, 4 * square, square)]
    assert row == [CHECKER_DARK, CHECKER_LIGHT, CHECKER_DARK, CHECKER_LIGHT]  # not black: see-through
    numbered = decode(contact_sheet([clear.getvalue()], tile=tile))
    badge = (gap + tile - max(4, tile // 32) - max(24, tile // 4) // 2, gap + tile - 60)
    assert sheet.getpixel(badge) != numbered.getpixel(badge)  # numbered=False leaves the badge out
