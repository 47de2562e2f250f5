"""The Landmarker takes the images users have, or says what it expects."""

import numpy as np
import pytest
from skimage import data

from helpers.checkpoint import CheckpointError
from helpers.landmarker import Landmarker
from tests.test_checkpoint import tiny


@pytest.fixture(scope="module")
def lm(face_ckpt):
    return Landmarker(face_ckpt, device="cpu", precision="float32")


def test_every_form_of_the_same_photo_gives_the_same_landmarks(lm):
    rgb = data.astronaut()
    reference = lm(rgb)
    assert len(reference) >= 1
    gray8 = np.asarray(np.round(rgb @ [0.299, 0.587, 0.114]), np.uint8)
    for form in (
        rgb.astype(np.float32) / 255,
        (rgb.astype(np.uint16) * 257),
        np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
    ):
        got = lm(form)
        assert len(got) == len(reference)
        np.testing.assert_allclose(got[0][1], reference[0][1], atol=0.5)
    for form in (gray8, gray8[..., None], gray8.astype(np.float64) / 255):
        assert len(lm(form)) >= 1
    box = reference[0][0]
    np.testing.assert_allclose(lm.from_boxes(gray8[..., None], [box]), lm.from_boxes(gray8, [box]))


@pytest.mark.parametrize(
    "bad, error, why",
    [
        ("photo.jpg", TypeError, "expected a NumPy array"),
        (np.full((50, 50), 3.0), ValueError, r"must lie in \[0, 1\]"),
        (np.zeros((50, 50, 2), np.uint8), ValueError, "expected shape"),
        (np.zeros((50, 50), np.int64) - 1, TypeError, "got int64"),
    ],
)
def test_refused_images_say_what_is_expected(lm, bad, error, why):
    with pytest.raises(error, match=why):
        lm(bad)


@pytest.mark.parametrize(
    "boxes, why",
    [
        ([(1, 2, 3)], "expected"),
        ([(0, 0, -5, 5)], "positive width"),
        ([(0, float("nan"), 5, 5)], "finite"),
        (["abcd"], "expected"),
    ],
)
def test_bad_boxes_are_named(lm, boxes, why):
    with pytest.raises(ValueError, match=f"box 0: .*{why}"):
        lm.from_boxes(np.zeros((50, 50), np.uint8), boxes)


@pytest.mark.parametrize(
    "settings, why",
    [
        ({"inference": {"offset": [[0.1, 0.2]]}}, r"offset has shape \(1, 2\), not 68"),
        ({"inference": {"offset": [[float("nan"), 0.0]] * 68}}, "not 68 finite"),
        ({"inference": {"decode": "magic"}}, "unknown decoder 'magic'"),
        ({"calibration": {"dx": 0.1}}, "calibration is not three finite numbers"),
        ({"calibration": {"dx": 0.1, "dy": 0.0, "scale": -1.0}}, "calibration is not three finite numbers"),
    ],
)
def test_settings_that_would_give_wrong_landmarks_are_refused(tmp_path, settings, why):
    path = tiny(tmp_path / "s.pt", preprocess={"input_size": 48, "context": 0.25}, **settings)
    with pytest.raises(CheckpointError, match=f"s.pt: .*{why}"):
        Landmarker(path, device="cpu")


def test_tiny_and_flat_photos(lm):
    assert lm(np.zeros((1, 1), np.uint8)) == []
    assert lm(np.full((3, 2000), 255, np.uint8)) == []
