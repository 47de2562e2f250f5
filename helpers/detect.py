"""The face detector, behind one small interface: ``detector(gray) -> list of boxes``.

The bundled detector is OpenCV's Haar cascades (they ship inside ``opencv-python-headless``
4.x, so it works offline): the frontal cascade first, then the profile cascade on the image
and its mirror for faces turned away.  A Haar box is not the landmarks' bounding box the
models were trained on, so :func:`calibrate` learns the average offset and scale between
the two on labelled faces, and :meth:`HaarFaceDetector.landmark_boxes` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # left, top, width, height


def square(box: Box) -> Box:
    """The square with the box's centre and its longer side: how a face crop sees any box."""
    left, top, w, h = box
    s = max(w, h)
    return left + w / 2 - s / 2, top + h / 2 - s / 2, s, s


def iou(a: Box, b: Box) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Calibration:
    """Landmark box from a detector box: centre shifted by ``(dx, dy)`` box widths, side
    scaled by ``scale``."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    def apply(self, box: Box) -> Box:
        left, top, w, h = box
        side = max(w, h)
        cx, cy = left + w / 2 + self.dx * side, top + h / 2 + self.dy * side
        s = side * self.scale
        return cx - s / 2, cy - s / 2, s, s


# Fitted with `calibrate` on the 300-W training faces of the mirror (see notebook 03).
DEFAULT_CALIBRATION = Calibration(dx=0.005, dy=0.145, scale=0.874)


class HaarFaceDetector:
    """Faces in a grayscale ``uint8`` image, largest first; large images are searched at
    ``max_side`` pixels and the boxes scaled back."""

    def __init__(
        self,
        calibration: Calibration = DEFAULT_CALIBRATION,
        max_side: int = 800,
        min_neighbors: int = 5,
        min_size_fraction: float = 0.08,
    ):
        root = Path(cv2.data.haarcascades)
        self.frontal = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self.profile = cv2.CascadeClassifier(str(root / "haarcascade_profileface.xml"))
        if self.frontal.empty() or self.profile.empty():
            raise RuntimeError(
                f"OpenCV's Haar cascades are missing from {root}: install opencv-python-headless<5"
            )
        self.calibration = calibration
        self.max_side = max_side
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction

    def __call__(self, gray: np.ndarray) -> list[Box]:
        """Raw detector boxes (not calibrated)."""
        f = min(1.0, self.max_side / max(gray.shape[:2]))
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
        small = cv2.equalizeHist(small)
        min_size = max(20, int(self.min_size_fraction * min(small.shape[:2])))
        kw = dict(scaleFactor=1.1, minSize=(min_size, min_size))
        boxes = []
        # strict first, looser only when the strict pass finds nothing: precision on easy
        # photos, recall on hard ones
        for neighbours in (self.min_neighbors, max(1, self.min_neighbors - 2)):
            boxes = [
                tuple(map(float, b))
                for b in self.frontal.detectMultiScale(small, minNeighbors=neighbours, **kw)
            ]
            if boxes:
                break
        if not boxes:
            w = small.shape[1]
            kw["minNeighbors"] = max(1, self.min_neighbors - 2)
            boxes = [tuple(map(float, b)) for b in self.profile.detectMultiScale(small, **kw)]
            boxes += [
                (w - x - bw, y, bw, bh)
                for x, y, bw, bh in (
                    tuple(map(float, b))
                    for b in self.profile.detectMultiScale(np.ascontiguousarray(small[:, ::-1]), **kw)
                )
            ]
            boxes = _suppress(boxes, 0.3)
        boxes = [(x / f, y / f, w / f, h / f) for x, y, w, h in boxes]
        return sorted(boxes, key=lambda b: -b[2] * b[3])

    def landmark_boxes(self, gray: np.ndarray) -> list[Box]:
        """Detections mapped onto the landmark-box convention the models were trained with."""
        return [self.calibration.apply(b) for b in self(gray)]


def _suppress(boxes: list[Box], threshold: float = 0.3) -> list[Box]:
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b[2] * b[3]):
        if all(iou(b, k) < threshold for k in kept):
            kept.append(b)
    return kept


def match(detections: list[Box], box: Box, min_iou: float = 0.3) -> int | None:
    """Index of the detection that best overlaps a labelled box, or None when none does."""
    scores = [iou(d, box) for d in detections]
    if not scores or max(scores) < min_iou:
        return None
    return int(np.argmax(scores))


def calibrate(detector: HaarFaceDetector, faces, load) -> tuple[Calibration, float]:
    """Median offset and scale from raw detections to labelled landmark boxes, and the share
    of faces detected.  ``load(path)`` returns the grayscale image."""
    rows, found, last, image = [], 0, None, None
    for face in faces:
        if face.image_path != last:
            image, last = load(face.image_path), face.image_path
            dets = detector(image)
        lx, ly, lw, lh = face.box
        side = max(lw, lh)
        k = match([square(d) for d in dets], square(face.box), 0.2)
        if k is None:
            continue
        found += 1
        x, y, w, h = dets[k]
        d = max(w, h)
        rows.append(((lx + lw / 2 - x - w / 2) / d, (ly + lh / 2 - y - h / 2) / d, side / d))
    if not rows:
        return DEFAULT_CALIBRATION, 0.0
    dx, dy, s = np.median(np.array(rows), axis=0)
    return Calibration(float(dx), float(dy), float(s)), found / max(len(faces), 1)
