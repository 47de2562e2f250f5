"""The face detector's stages and their calibration."""

import cv2
import numpy as np
import pytest
from skimage import data

from helpers import checkpoint, detect

ASTRONAUT = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
COFFEE = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY)


def on_her_face(box):
    x, y, w, h = box
    return 150 < x + w / 2 < 280 and 50 < y + h / 2 < 200  # upper middle of the 512 px photo


@pytest.mark.parametrize("stage", detect.STAGES)
def test_each_stage_finds_the_astronaut_and_nothing_in_coffee(stage):
    det = detect.stage_detector(stage)
    boxes = det(ASTRONAUT)
    assert len(boxes) >= 1 and on_her_face(boxes[0])
    assert det(COFFEE) == []


def test_hog_boxes_are_in_the_photos_pixels_when_it_is_searched_smaller():
    full = detect.HogFaceDetector()(ASTRONAUT)[0]
    big = cv2.resize(ASTRONAUT, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # searched at 800 px
    scaled = detect.HogFaceDetector()(big)[0]
    assert detect.iou(tuple(v / 3 for v in scaled), full) > 0.8


def test_the_first_stage_that_finds_a_face_answers_with_its_own_calibration():
    cals = {"hog": detect.Calibration(0.0, 0.1, 0.8), "haar": detect.Calibration(0.0, 0.0, 2.0)}
    det = detect.FaceDetector(cals, stages=("hog", "haar"))
    stage, raw = det.detect(ASTRONAUT)
    assert stage == "hog"
    assert det.landmark_boxes(ASTRONAUT) == [cals["hog"].apply(b) for b in raw]
    assert det.detect(COFFEE) == ("haar", []) and det.landmark_boxes(COFFEE) == []
    haar_only = detect.FaceDetector(cals, stages=("haar",))
    assert haar_only.landmark_boxes(ASTRONAUT) == [
        cals["haar"].apply(b) for b in haar_only.stages["haar"](ASTRONAUT)
    ]
    # a stage without a fitted calibration uses the default one
    assert detect.FaceDetector({}, stages=("hog",)).calibrations == {
        "hog": detect.DEFAULT_CALIBRATIONS["hog"]
    }


def test_calibration_moves_and_scales_about_the_centre():
    assert detect.Calibration(0.0, 0.1, 0.8).apply((0, 0, 100, 100)) == pytest.approx((10, 20, 80, 80))


def test_calibrate_recovers_a_known_offset_and_scale():
    """A fake detector whose box is the labelled box shifted right by 10 % and twice as big."""

    class Face:
        def __init__(self, k):
            self.image_path, self.box = f"photo{k}", (100.0 + k, 50.0, 80.0, 80.0)

    faces = [Face(k) for k in range(5)]
    shifted = {f.image_path: (f.box[0] - 40 + 8, f.box[1] - 40, 160.0, 160.0) for f in faces}
    cal, found = detect.calibrate(lambda path: [shifted[path]], faces, load=lambda path: path)
    assert found == 1.0
    assert (cal.dx, cal.dy, cal.scale) == pytest.approx((-0.05, 0.0, 0.5))
    for f in faces:
        assert cal.apply(shifted[f.image_path]) == pytest.approx(f.box)
    nothing, none_found = detect.calibrate(
        lambda path: [], faces, lambda path: path, detect.DEFAULT_CALIBRATIONS["haar"]
    )
    assert nothing == detect.DEFAULT_CALIBRATIONS["haar"] and none_found == 0.0


def test_unknown_stages_are_named():
    with pytest.raises(ValueError, match="unknown detector stage 'mtcnn'; known: hog, hog_upsampled, haar"):
        detect.FaceDetector(stages=("hog", "mtcnn"))
    with pytest.raises(ValueError, match="at least one stage"):
        detect.checked_stages(())


def test_a_calibration_from_before_the_hog_detector_is_the_haar_cascades():
    flat = {"dx": 0.0, "dy": 0.1, "scale": 0.9}
    assert checkpoint.detector_calibrations({"calibration": flat}, "old.pt") == {"haar": flat}
    assert checkpoint.detector_calibrations({}, "none.pt") == {}
    staged = {name: flat for name in detect.STAGES}
    assert checkpoint.detector_calibrations({"calibration": staged}, "new.pt") == staged
    assert np.isfinite(list(detect.DEFAULT_CALIBRATIONS["hog"].__dict__.values())).all()
