"""Hostile-input decoding: every file is generated here, none is read from disk."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.domain.errors import FileTooLarge, InvalidImage
from app.ml import images
from app.ml.images import decode_frame, decode_image, sniff_format
from tests.ml.hostile_files import pdf_page, png_claiming, raster


def _picture(width: int = 128, height: int = 96) -> Image.Image:
    # A red left half and a blue right half make channel order testable.
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(pixels, "RGB")


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _assert_red_left_blue_right(bgr: np.ndarray, width: int, height: int) -> None:
    assert bgr.dtype == np.uint8 and bgr.shape == (height, width, 3)
    left, right = bgr[height // 2, 2], bgr[height // 2, width - 3]
    assert left[2] > 200 and left[0] < 60, left  # red, in BGR order
    assert right[0] > 200 and right[2] < 60, right


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_raster_formats_decode_to_bgr(fmt: str) -> None:
    bgr = decode_image(_encode(_picture(), fmt))
    _assert_red_left_blue_right(bgr, 128, 96)


def test_png_with_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    bgr = decode_image(_encode(rgba, "PNG"))
    assert bgr.shape == (80, 80, 3) and int(bgr.min()) == 255


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    bgr = decode_image(_encode(_picture(128, 96), "JPEG", exif=exif))
    assert bgr.shape == (128, 96, 3)


def test_pdf_first_page_is_rendered() -> None:
    pdf = _encode(_picture(300, 200), "PDF", resolution=72.0)
    assert sniff_format(pdf) == "pdf"
    bgr = decode_image(pdf)
    # 300x200 points at 200 dpi.
    assert abs(bgr.shape[1] - 833) <= 2 and abs(bgr.shape[0] - 556) <= 2
    _assert_red_left_blue_right(bgr, bgr.shape[1], bgr.shape[0])


def test_pdf_render_respects_pixel_limit() -> None:
    pdf = _encode(_picture(300, 200), "PDF", resolution=72.0)
    bgr = decode_image(pdf, max_pixels=60_000)
    assert bgr.shape[0] * bgr.shape[1] <= 60_000


def test_format_is_sniffed_from_bytes_not_names() -> None:
    # The caller never passes a name: the magic bytes decide.
    assert sniff_format(_encode(_picture(), "PNG")) == "png"


def test_zero_bytes_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"")


def test_truncated_jpeg_is_invalid() -> None:
    data = _encode(_picture(256, 256), "JPEG")
    with pytest.raises(InvalidImage, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_invalid() -> None:
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) - 40])


def test_text_file_renamed_jpg_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="not a JPEG, PNG or PDF"):
        decode_image(b"name,dob\nAsha,1990-01-01\n")


def test_corrupt_pdf_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="PDF"):
        decode_image(b"%PDF-1.7\n garbage that is not a pdf")


def test_png_bomb_is_refused_from_the_header() -> None:
    with pytest.raises(FileTooLarge) as info:
        decode_image(_png_claiming(100_000, 100_000))
    assert info.value.code == "file_too_large"


def test_image_above_pixel_limit_is_refused() -> None:
    with pytest.raises(FileTooLarge, match="megapixels"):
        decode_image(_encode(_picture(400, 300), "PNG"), max_pixels=100_000)


def test_oversize_file_is_refused() -> None:
    with pytest.raises(FileTooLarge, match="MB"):
        decode_image(_encode(_picture(), "PNG"), max_bytes=100)


def test_base64_frame_and_data_url() -> None:
    jpeg = _encode(_picture(), "JPEG")
    plain = base64.b64encode(jpeg).decode()
    _assert_red_left_blue_right(decode_frame(plain), 128, 96)
    _assert_red_left_blue_right(decode_frame("data:image/jpeg;base64," + plain), 128, 96)
    # Unpadded and line-wrapped base64 as some clients send it.
    wrapped = "\n".join(plain.rstrip("=")[i : i + 76] for i in range(0, len(plain.rstrip("=")), 76))
    _assert_red_left_blue_right(decode_frame(wrapped), 128, 96)


@pytest.mark.parametrize(
    "value",
    ["", "not base64 at all!!", "data:image/png,rawbytes", "data:text/plain;base64,aGVsbG8="],
)
def test_bad_frames_are_invalid(value: str) -> None:
    with pytest.raises(InvalidImage):
        decode_frame(value)


def test_frame_must_not_be_pdf() -> None:
    pdf = _encode(_picture(), "PDF")
    with pytest.raises(InvalidImage):
        decode_frame(base64.b64encode(pdf).decode())


def test_huge_frame_is_refused_before_decoding() -> None:
    with pytest.raises(FileTooLarge):
        decode_frame("A" * 4000, max_bytes=1000)


# --- the size the models will work on ---------------------------------------------------


@pytest.mark.parametrize("width, height", [(1, 100), (100, 1), (20000, 1), (1, 20000), (63, 200), (40, 40)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_short_side_below_the_minimum_is_refused_before_decoding(width: int, height: int, fmt: str) -> None:
    with pytest.raises(InvalidImage, match=f"is {width}x{height} pixels; its shorter side must be at least 64"):
        decode_image(raster(width, height, fmt))


@pytest.mark.parametrize("width, height", [(1000, 200), (200, 1000), (4001, 1000), (64, 257)])
def test_an_extreme_aspect_ratio_is_refused(width: int, height: int) -> None:
    with pytest.raises(InvalidImage, match="longer side may be at most 4 times its shorter side"):
        decode_image(raster(width, height))


@pytest.mark.parametrize("width, height", [(64, 64), (64, 256), (256, 64), (1000, 630), (4000, 1000)])
def test_sizes_within_the_limits_decode(width: int, height: int) -> None:
    assert decode_image(raster(width, height)).shape == (height, width, 3)


def test_a_frame_gets_the_same_checks() -> None:
    with pytest.raises(InvalidImage, match="shorter side"):
        decode_frame(base64.b64encode(raster(1, 100)).decode())


def test_a_bomb_claiming_a_thin_shape_is_refused_from_the_header() -> None:
    with pytest.raises(InvalidImage, match="longer side"):
        decode_image(png_claiming(1_000_000, 100))


@pytest.mark.parametrize("width_pt, height_pt, message", [
    (1, 100000, "is 1x100000 points; its longer side may be at most 4 times"),
    (100000, 1, "longer side may be at most 4 times"),
    (10, 10, "rendered, is 27x27 pixels; its shorter side must be at least 64"),
    (0.01, 0.01, "shorter side"),
])
def test_pdf_pages_are_judged_on_their_rendered_size(width_pt: float, height_pt: float, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        decode_image(pdf_page(width_pt, height_pt))


def test_a_huge_pdf_page_renders_within_the_pixel_limit() -> None:
    bgr = decode_image(pdf_page(100000, 100000), max_pixels=4_000_000)
    assert bgr.shape[0] * bgr.shape[1] <= 4_000_000


def test_the_work_pixel_budget_is_a_413(monkeypatch) -> None:
    monkeypatch.setattr(images, "MAX_WORK_PIXELS", 2_000_000)  # 1000x1000: OCR 1.0 MP, HOG's upsampled pass 4.0
    with pytest.raises(FileTooLarge, match="analysing it would take 4.0 megapixels, at most 2 are allowed"):
        decode_image(raster(1000, 1000))


@pytest.mark.parametrize("width, height", [
    (1, 100), (100, 1), (64, 64), (64, 257), (300, 40), (1000, 630), (630, 1000), (1334, 880), (2500, 1000),
    (4000, 3000), (3000, 4000), (7000, 500), (500, 7000), (20000, 800), (2001, 31),
])
def test_ocr_work_size_matches_the_installed_rapidocr(width: int, height: int) -> None:
    """The pixels the text detector receives, as rapidocr 3.10 computes them with its defaults
    (the resize, the padding of wide images, the detector's own resize to a 736-px short side)."""
    from rapidocr.ch_ppocr_det.utils import DetPreProcess
    from rapidocr.utils.process_img import apply_vertical_padding, resize_image_within_bounds

    image = np.zeros((height, width, 3), np.uint8)
    image, _, _ = resize_image_within_bounds(image, 30, 2000)
    image, _ = apply_vertical_padding(image, {}, 8, 30)
    detector_input = DetPreProcess(736, "min").resize(image)
    assert images.ocr_work_size(width, height) == (detector_input.shape[1], detector_input.shape[0])


def test_rapidocr_defaults_are_the_ones_mirrored() -> None:
    from pathlib import Path

    import rapidocr
    import yaml

    config = yaml.safe_load((Path(rapidocr.__file__).parent / "config.yaml").read_text())
    assert (config["Global"]["min_side_len"], config["Global"]["max_side_len"]) == (30, 2000)
    assert (config["Global"]["use_vertical_padding"], config["Global"]["width_height_ratio"]) == (True, 8)
    assert config["Global"]["min_height"] == 30
    assert (config["Det"]["limit_side_len"], config["Det"]["limit_type"]) == (736, "min")
