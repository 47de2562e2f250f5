"""The Landmarker takes the images users have, or says what it expects."""

import numpy as np
import pytest
import torch
from skimage import data

from helpers import checkpoint
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
        ({"inference": {"flip_offset": [[0.1, 0.2]] * 67}}, r"flip_offset has shape \(67, 2\), not 68"),
        ({"inference": {"decode": "magic"}}, "unknown decoder 'magic'"),
        ({"inference": {"passes": 0}}, "passes must be a whole number from 1, not 0"),
        ({"inference": {"passes": 2.5}}, "passes must be a whole number from 1, not 2.5"),
        ({"calibration": {"dx": 0.1}}, "calibration is not, for each of .* three finite numbers"),
        ({"calibration": {"dx": 0.1, "dy": 0.0, "scale": -1.0}}, "calibration is not, for each of"),
        ({"calibration": {"hog": {"dx": 0.1, "dy": 0.0, "scale": float("inf")}}}, "calibration is not"),
        ({"calibration": {"mtcnn": {"dx": 0.1, "dy": 0.0, "scale": 1.0}}}, "calibration is not"),
    ],
)
def test_settings_that_would_give_wrong_landmarks_are_refused(tmp_path, settings, why):
    path = tiny(tmp_path / "s.pt", preprocess={"input_size": 48, "context": 0.25}, **settings)
    with pytest.raises(CheckpointError, match=f"s.pt: .*{why}"):
        Landmarker(path, device="cpu")


def test_tiny_and_flat_photos(lm):
    assert lm(np.zeros((1, 1), np.uint8)) == []
    assert lm(np.full((3, 2000), 255, np.uint8)) == []


def test_landmarker_maps_predictions_into_the_photo(face_ckpt):
    lm = Landmarker(face_ckpt, device="cpu")
    gray = np.full((120, 160), 128, np.uint8)
    pts = lm.from_boxes(gray, [(40, 30, 50, 50), (-10, -10, 40, 40)])
    assert pts.shape == (2, 68, 2)
    # every prediction lies inside its crop: the box plus its 25 % margin
    assert (pts[0] >= 40 - 7).all() and (pts[0, :, 0] <= 90 + 7).all()
    assert lm.from_boxes(gray, []).shape == (0, 68, 2)


@pytest.mark.parametrize("decode", ["argmax", "soft_argmax", "local_soft_argmax"])
def test_heatmap_checkpoints_work_with_the_landmarker(tmp_path, decode):
    spec = {"kind": "heatmap_resnet18", "n_points": 68, "decode": decode, "backbone_from": None}
    lm = Landmarker(
        tiny(tmp_path / "heat.pt", spec, preprocess={"input_size": 64, "context": 0.25}), device="cpu"
    )
    gray = np.random.default_rng(0).integers(0, 255, (100, 120), dtype=np.uint8)
    boxes = [(30, 20, 50, 50), (0, 0, 30, 30), (60, 40, 40, 40)]
    pts = lm.from_boxes(gray, boxes)
    assert pts.shape == (3, 68, 2)
    for (x, _y, w, h), p in zip(boxes, pts):  # decoded points stay within each face's crop
        m = 0.625 * max(w, h)
        assert (p[:, 0] >= x + w / 2 - m - 1).all() and (p[:, 0] <= x + w / 2 + m + 1).all()


def test_landmarker_takes_flip_and_decoder_from_the_checkpoint(tmp_path):
    spec = {"kind": "heatmap_resnet18", "n_points": 68, "decode": "argmax", "logits": True}
    inference = {"flip": True, "decode": "soft_argmax", "beta": 2.0}
    path = tiny(
        tmp_path / "heat.pt", spec, preprocess={"input_size": 64, "context": 0.25}, inference=inference
    )
    lm = Landmarker(path, device="cpu")
    assert lm.flip and lm.model.decode == "soft_argmax" and lm.model.beta == 2.0
    assert not Landmarker(path, device="cpu", flip=False).flip
    assert Landmarker(path, device="cpu", precision="float32").dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        Landmarker(path, device="cpu", precision="half")


def test_detected_faces_are_re_cropped_by_their_first_landmarks(face_ckpt, monkeypatch):
    lm = Landmarker(face_ckpt, device="cpu")
    face = np.array([[45.0, 35.0], [85.0, 79.0]] * 34)  # landmarks whose box is (45, 35, 40, 44)
    seen = []

    def from_boxes(gray, boxes):
        seen.append([tuple(map(float, b)) for b in boxes])
        return np.stack([face, np.full((68, 2), 7.0)])  # the second face's prediction collapses

    monkeypatch.setattr(lm, "from_boxes", from_boxes)
    lm.from_detections(None, [(40, 30, 50, 50), (0, 0, 20, 20)])
    assert seen == [[(40, 30, 50, 50), (0, 0, 20, 20)], [(45, 35, 40, 44), (0, 0, 20, 20)]]
    seen.clear()
    lm.from_detections(None, [(40, 30, 50, 50), (0, 0, 20, 20)], passes=1)
    assert len(seen) == 1
    with pytest.raises(ValueError, match="passes must be at least 1"):
        lm.from_detections(None, [(40, 30, 50, 50)], passes=0)


def test_detected_faces_get_the_number_of_passes_the_checkpoint_records(face_ckpt, tmp_path, monkeypatch):
    ckpt = checkpoint.load_checkpoint(face_ckpt)
    ckpt["inference"] = {**ckpt.get("inference", {}), "passes": 3}
    lm = Landmarker(checkpoint.save(tmp_path / "three.pt", ckpt), device="cpu")
    calls = []
    monkeypatch.setattr(
        lm, "from_boxes", lambda gray, boxes: calls.append(boxes) or np.full((1, 68, 2), 50.0)
    )
    lm.from_detections(None, [(40, 30, 50, 50)])
    assert len(calls) == 3
    assert Landmarker(face_ckpt, device="cpu").passes == 2  # no choice recorded: two passes
    assert Landmarker(face_ckpt, device="cpu", passes=1).passes == 1
    with pytest.raises(ValueError, match="passes must be at least 1"):
        Landmarker(face_ckpt, device="cpu", passes=0)


def test_landmarker_adds_the_checkpoints_offset_in_crop_units(face_ckpt, tmp_path):
    ckpt = checkpoint.load_checkpoint(face_ckpt)
    ckpt["inference"] = {"offset": np.tile([0.1, -0.05], (68, 1)).tolist()}
    path = checkpoint.save(tmp_path / "offset.pt", ckpt)
    gray = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    box = (40, 30, 48, 40)  # crop side 1.25 * 48 = 60 px: one unit is 30 px
    shifted = Landmarker(path, device="cpu", precision="float32").from_boxes(gray, [box])
    raw = Landmarker(path, device="cpu", precision="float32", offset=False).from_boxes(gray, [box])
    np.testing.assert_allclose(shifted - raw, np.tile([3.0, -1.5], (1, 68, 1)), atol=1e-3)


def test_landmarker_adds_the_offset_of_the_way_it_runs(face_ckpt, tmp_path):
    """One pass and flip averaging each get their own offset; a file with one offset (written
    before ``flip_offset``) gives it to both."""
    ckpt = checkpoint.load_checkpoint(face_ckpt)
    one, two = np.tile([0.1, -0.05], (68, 1)).tolist(), np.tile([0.0, -0.05], (68, 1)).tolist()
    gray = np.random.default_rng(1).integers(0, 255, (120, 160), dtype=np.uint8)
    box = (40, 30, 48, 40)  # one unit is 30 px of the photo

    def shift(inference, flip):
        ckpt["inference"] = inference
        path = checkpoint.save(tmp_path / "offsets.pt", ckpt)
        run = {"device": "cpu", "precision": "float32", "flip": flip}
        raw = Landmarker(path, offset=False, **run).from_boxes(gray, [box])
        return Landmarker(path, **run).from_boxes(gray, [box]) - raw

    by_one, by_two = np.tile([3.0, -1.5], (1, 68, 1)), np.tile([0.0, -1.5], (1, 68, 1))
    for default in (False, True):
        both = {"flip": default, "offset": one, "flip_offset": two}
        np.testing.assert_allclose(shift(both, False), by_one, atol=1e-3)
        np.testing.assert_allclose(shift(both, True), by_two, atol=1e-3)
    np.testing.assert_allclose(shift({"flip": True, "offset": two}, False), by_two, atol=1e-3)
