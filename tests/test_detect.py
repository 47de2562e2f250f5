"""The Haar face detector and its calibration."""

import pytest

from helpers import detect


def test_detector_finds_the_astronaut_and_nothing_in_coffee():
    import cv2
    from skimage import data

    det = detect.HaarFaceDetector()
    boxes = det(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY))
    assert len(boxes) >= 1
    x, y, w, h = boxes[0]
    assert 150 < x + w / 2 < 280 and 50 < y + h / 2 < 200  # her face, upper middle of the 512 px photo
    assert det(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY)) == []
    cal = detect.Calibration(0.0, 0.1, 0.8)
    assert cal.apply((0, 0, 100, 100)) == pytest.approx((10, 20, 80, 80))
