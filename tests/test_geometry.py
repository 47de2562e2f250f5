"""Every geometric step is checked against an image whose answer is known: a marked blob
whose intensity centroid must land exactly where the keypoint goes."""

import numpy as np
import pytest

from helpers import geometry


def blob(wh, centre, radius=2.0, value=255.0):
    """A smooth Gaussian bump at ``centre`` (pixel-centre coordinates)."""
    w, h = wh
    ys, xs = np.mgrid[0:h, 0:w]
    return value * np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * radius**2))


def centroid(image, near=None, window=12):
    img = np.asarray(image, np.float64)
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    if near is not None:
        img = np.where((np.abs(xs - near[0]) < window) & (np.abs(ys - near[1]) < window), img, 0)
    img = np.where(img > img.max() * 0.05, img, 0)
    return np.array([(img * xs).sum(), (img * ys).sum()]) / img.sum()


def test_resize_block_lands_on_pixel_centre():
    # an 8x8 block covering columns 80..87 and rows 40..47 of a 640x480 image is exactly
    # pixel (10, 5) of the 80x60 image; its centre (83.5, 43.5) must map to (10, 5)
    img = np.zeros((480, 640), np.uint8)
    img[40:48, 80:88] = 255
    m = geometry.resize((640, 480), (80, 60))
    small = geometry.warp(img, m, (80, 60))
    assert np.unravel_index(small.argmax(), small.shape) == (5, 10)
    assert small[5, 10] == 255 and small.sum() == 255
    np.testing.assert_allclose(geometry.apply(m, np.array([[83.5, 43.5]])), [[10.0, 5.0]])


@pytest.mark.parametrize(
    "name,matrix",
    [
        ("hflip", geometry.hflip(101)),
        ("rotate", geometry.rotate((50, 40), 13.0)),
        ("rotate+zoom", geometry.rotate((50, 40), -15.0, 1.2)),
        ("shift", geometry.shift(7.3, -4.6)),
        ("upscale", geometry.resize((101, 81), (202, 162))),
        ("crop", geometry.square_crop((30, 20, 40, 30), 64, 0.3)),
    ],
)
def test_geometric_step_moves_blob_with_keypoint(name, matrix):
    key = np.array([[37.3, 28.6]])
    img = blob((101, 81), key[0])
    out_wh = (202, 162) if name == "upscale" else (64, 64) if name == "crop" else (101, 81)
    out = geometry.warp(img.astype(np.float32), matrix, out_wh, border=0)
    moved = geometry.apply(matrix, key)[0]
    np.testing.assert_allclose(centroid(out, moved), moved, atol=0.06)


@pytest.mark.parametrize("wh", [(400, 300), (401, 301), (403, 299)])
def test_large_downscale_keeps_keypoint_on_blob_for_any_frame_size(wh):
    # a shrink below 0.5 goes through an area-averaged pre-shrink by a whole factor; with an
    # odd side, letting cv2.resize round the size stretched the map by up to half a pixel
    key = np.array([[301.3, 201.7]])
    img = blob(wh, key[0], radius=10.0)
    m = geometry.square_crop((0, 0, *wh), 140, 0.0)  # scale about 0.35: pre-shrink by 2
    moved = geometry.apply(m, key)[0]
    out = geometry.warp(img.astype(np.float32), m, (140, 140), border=0)
    np.testing.assert_allclose(centroid(out, moved), moved, atol=0.03)


def test_hflip_is_pixel_exact():
    img = np.zeros((5, 7), np.uint8)
    img[2, 1] = 255
    out = geometry.warp(img, geometry.hflip(7), (7, 5))
    assert out[2, 5] == 255 and out.sum() == 255
    np.testing.assert_allclose(geometry.apply(geometry.hflip(7), np.array([[1.0, 2.0]])), [[5.0, 2.0]])


def test_compose_and_invert_round_trip():
    m = geometry.compose(geometry.rotate((10, 10), 30, 0.8), geometry.shift(3, 4), geometry.hflip(50))
    pts = np.random.default_rng(0).uniform(0, 50, (20, 2))
    np.testing.assert_allclose(geometry.apply(geometry.invert(m), geometry.apply(m, pts)), pts, atol=1e-9)
    # compose applies left to right
    step = geometry.apply(
        geometry.hflip(50),
        geometry.apply(geometry.shift(3, 4), geometry.apply(geometry.rotate((10, 10), 30, 0.8), pts)),
    )
    np.testing.assert_allclose(geometry.apply(m, pts), step, atol=1e-9)


def test_unit_coordinates_round_trip_and_edges():
    pts = np.array([[-0.5, -0.5], [79.5, 59.5], [39.5, 29.5]])
    np.testing.assert_allclose(geometry.to_unit(pts, (80, 60)), [[-1, -1], [1, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(geometry.from_unit(geometry.to_unit(pts, (80, 60)), (80, 60)), pts, atol=1e-5)
