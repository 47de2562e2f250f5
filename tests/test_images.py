"""Images as users have them: 16-bit, float, huge, broken; and what the Landmarker accepts."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers.images import ImageError, as_uint8, load_image, to_gray


def png_header_only(path, width, height):
    """A PNG that declares ``width x height`` pixels in a few bytes: a decompression bomb's shape."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_sixteen_bit_gray_keeps_its_range(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    gray = load_image(tmp_path / "g16.png")
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255
    assert abs(float(gray.mean()) - 127.5) < 1  # not "almost white", as a clipping conversion gives
    rgb = load_image(tmp_path / "g16.png", gray=False)
    assert rgb.shape == (48, 64, 3) and (rgb[..., 0] == gray).all()


def test_float_images_decode_from_zero_one(tmp_path):
    ramp = np.linspace(0, 1, 64 * 48).reshape(48, 64).astype(np.float32)
    Image.fromarray(ramp).save(tmp_path / "f.tif")
    gray = load_image(tmp_path / "f.tif")
    assert gray.min() == 0 and gray.max() == 255 and abs(float(gray.mean()) - 127.5) < 1


def test_sixteen_bit_colour(tmp_path):
    import cv2

    bgr = np.zeros((8, 8, 3), np.uint16)
    bgr[..., 2] = 65535  # red, full scale
    cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    rgb = load_image(tmp_path / "c16.png", gray=False)
    assert rgb[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("side", [10_000, 20_000])  # over the limit; over twice Pillow's own
def test_huge_images_are_refused_before_decoding(tmp_path, side):
    path = png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(ImageError, match=r"bomb.png: .*(over the limit|too many pixels)") as err:
        load_image(path)
    assert "\n" not in str(err.value)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(png_header_only(tmp_path / "small.png", 100, 100), max_pixels=5_000)


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda p: p.write_bytes(b""), "cannot decode"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10), "cannot decode"),
        (lambda p: p.mkdir(), "a folder"),
    ],
)
def test_broken_files_are_one_line(tmp_path, make, why):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImageError, match=why) as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_a_truncated_jpeg(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_arrays_users_have():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (as_uint8(gray) == gray).all()
    assert (as_uint8(gray[..., None]) == gray).all()  # (H, W, 1)
    assert (as_uint8(gray.astype(np.float32) / 255) == gray).all()  # float in [0, 1]
    assert (as_uint8(gray.astype(np.uint16) * 257) == gray).all()  # 16-bit
    rgba = np.dstack([gray, gray, gray, np.zeros_like(gray)])
    assert as_uint8(rgba).shape == (3, 4, 3)
    assert (to_gray(np.dstack([gray] * 3)) == gray).all()
    assert (as_uint8(Image.fromarray(gray)) == gray).all()


@pytest.mark.parametrize(
    "bad, error, why",
    [
        (np.full((4, 4), 200.0), ValueError, r"must lie in \[0, 1\].*\[200, 200\]"),
        (np.full((4, 4), np.nan), ValueError, "NaN"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, "expected shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError, "expected shape"),
        (np.zeros((0, 4), np.uint8), ValueError, "expected shape"),
        (np.zeros((4, 4), bool), TypeError, "got bool"),
        (np.zeros((4, 4), np.complex64), TypeError, "got complex64"),
        ([[0, 1], [2, 3]], TypeError, "got list"),
        ("photo.jpg", TypeError, "got str"),
    ],
)
def test_arrays_that_are_refused_say_what_is_expected(bad, error, why):
    with pytest.raises(error, match=why):
        as_uint8(bad)


def test_load_image_modes_exif_and_errors(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent on the left
    rgba[:, :3, 3] = 0
    rgba[:, 3:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png", gray=False)
    assert rgb.shape == (4, 6, 3) and tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 5]) == (255, 0, 0)

    tall = Image.new("L", (6, 4))
    exif = tall.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    tall.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (6, 4)

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageError, match="broken.jpg: cannot decode"):
        load_image(tmp_path / "broken.jpg")
    with pytest.raises(ImageError, match="nope.jpg: no such image"):
        load_image(tmp_path / "nope.jpg")
