"""The face detector, behind one small interface: ``detector.landmark_boxes(gray) -> boxes``.

:class:`FaceDetector` tries three stages and keeps the first that finds a face:

1. dlib's HOG frontal detector (``dlib-bin`` on PyPI; its model ships inside the wheel, so it
   works offline).  On the 300-W validation faces it finds 86 of 87 where OpenCV's Haar
   cascades find 81, and its boxes stay on the face: a Haar box can slide onto the ear of a
   turned face, and the landmarks predicted in that crop are far off.
2. the same detector on the photo upsampled twice, for faces under about 80 pixels;
3. OpenCV's Haar cascades (inside ``opencv-python-headless`` 4.x): frontal, then profile on the
   photo and its mirror, for faces turned further than the HOG model was trained on.

No detector's box is the landmarks' bounding box the models were trained on, so
:func:`calibrate` learns each stage's average offset and scale between the two on labelled
faces, and the checkpoint keeps them (:class:`Calibration`).
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


STAGES = ("hog", "hog_upsampled", "haar")

# Fitted with `calibrate` on 300-W training faces (notebooks 03 and 04 fit their own); used for a
# checkpoint that records none.
DEFAULT_CALIBRATIONS = {
    "hog": Calibration(dx=0.0, dy=0.081, scale=0.992),
    "hog_upsampled": Calibration(dx=0.011, dy=0.093, scale=0.955),
    "haar": Calibration(dx=0.005, dy=0.145, scale=0.874),
}


def _shrunk(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image at no more than ``max_side`` pixels, and the factor it was scaled by."""
    f = min(1.0, max_side / max(gray.shape[:2]))
    return (cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray), f


class HogFaceDetector:
    """dlib's HOG frontal face detector: raw boxes in a grayscale ``uint8`` image, the most
    confident first (a weak false detection can be larger than the face).  Large images are
    searched at ``max_side`` pixels; ``upsample`` doubles the image that many times first
    (each finds faces half the size, at four times the cost)."""

    def __init__(self, upsample: int = 0, max_side: int = 800):
        try:
            import dlib
        except ImportError:
            raise ImportError(
                "the face detector needs dlib: pip install dlib-bin "
                "(or use FaceDetector(stages=('haar',)), OpenCV's cascades alone)"
            ) from None
        self._detector = dlib.get_frontal_face_detector()
        self.upsample, self.max_side = upsample, max_side

    def __call__(self, gray: np.ndarray) -> list[Box]:
        small, f = _shrunk(gray, self.max_side)
        found, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample)
        ranked = sorted(zip(scores, found), key=lambda pair: -pair[0])
        return [(r.left() / f, r.top() / f, r.width() / f, r.height() / f) for _, r in ranked]


class HaarFaceDetector:
    """OpenCV's Haar cascades: raw boxes in a grayscale ``uint8`` image, largest first; large
    images are searched at ``max_side`` pixels and the boxes scaled back."""

    def __init__(self, max_side: int = 800, min_neighbors: int = 5, min_size_fraction: float = 0.08):
        root = Path(cv2.data.haarcascades)
        self.frontal = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self.profile = cv2.CascadeClassifier(str(root / "haarcascade_profileface.xml"))
        if self.frontal.empty() or self.profile.empty():
            raise RuntimeError(
                f"OpenCV's Haar cascades are missing from {root}: install opencv-python-headless<5"
            )
        self.max_side = max_side
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction

    def __call__(self, gray: np.ndarray) -> list[Box]:
        small, f = _shrunk(gray, self.max_side)
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


def checked_stages(stages) -> tuple[str, ...]:
    """``stages`` as a tuple of known stage names, or a ``ValueError`` that names the bad one."""
    stages = tuple(stages)
    if not stages:
        raise ValueError("a face detector needs at least one stage")
    for name in stages:
        if name not in STAGES:
            raise ValueError(f"unknown detector stage {name!r}; known: {', '.join(STAGES)}")
    return stages


def stage_detector(name: str, max_side: int = 800):
    """The raw detector of one of :data:`STAGES`."""
    (name,) = checked_stages((name,))
    if name == "hog":
        return HogFaceDetector(0, max_side)
    if name == "hog_upsampled":
        return HogFaceDetector(1, max_side)
    return HaarFaceDetector(max_side)


class FaceDetector:
    """Faces in a grayscale ``uint8`` image from the first of ``stages`` that finds any (the
    module docstring says why these three, in this order), in that stage's order (HOG: most
    confident first; Haar: largest first), each mapped by its stage's calibration onto the
    landmark boxes the models were trained on.
    ``calibrations``: by stage name; a stage missing there uses :data:`DEFAULT_CALIBRATIONS`."""

    def __init__(
        self,
        calibrations: dict[str, Calibration] | None = None,
        stages: tuple[str, ...] = STAGES,
        max_side: int = 800,
    ):
        self.stages = {name: stage_detector(name, max_side) for name in checked_stages(stages)}
        self.calibrations = {
            name: (calibrations or {}).get(name, DEFAULT_CALIBRATIONS[name]) for name in stages
        }

    def detect(self, gray: np.ndarray) -> tuple[str, list[Box]]:
        """The first stage that finds a face and its raw boxes (``(last stage, [])`` if none does)."""
        for name, stage in self.stages.items():
            boxes = stage(gray)
            if boxes:
                return name, boxes
        return name, []

    def landmark_boxes(self, gray: np.ndarray) -> list[Box]:
        """Detections mapped onto the landmark-box convention the models were trained with."""
        name, boxes = self.detect(gray)
        return [self.calibrations[name].apply(b) for b in boxes]


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


def _fit_calibrations(detectors: dict, faces, load, defaults: dict) -> dict[str, tuple[Calibration, float]]:
    """For each raw detector, by name: the median offset and scale from its boxes to the
    labelled landmark boxes (its ``defaults`` entry where it finds no face), and the share of
    faces it finds.  Each photo is decoded once, whatever the number of detectors."""
    faces = list(faces)
    rows = {name: [] for name in detectors}
    last, found = None, {}
    for face in faces:
        if face.image_path != last:
            image, last = load(face.image_path), face.image_path
            found = {name: detector(image) for name, detector in detectors.items()}
        lx, ly, lw, lh = face.box
        side = max(lw, lh)
        for name, dets in found.items():
            k = match([square(d) for d in dets], square(face.box), 0.2)
            if k is None:
                continue
            x, y, w, h = dets[k]
            d = max(w, h)
            rows[name].append(((lx + lw / 2 - x - w / 2) / d, (ly + lh / 2 - y - h / 2) / d, side / d))
    fits = {}
    for name, offsets in rows.items():
        if not offsets:
            fits[name] = defaults[name], 0.0
            continue
        dx, dy, s = np.median(np.array(offsets), axis=0)
        fits[name] = Calibration(float(dx), float(dy), float(s)), len(offsets) / max(len(faces), 1)
    return fits


def calibrate(detector, faces, load, default: Calibration = Calibration()) -> tuple[Calibration, float]:
    """Median offset and scale from a raw detector's boxes (``detector(gray) -> boxes``) to
    labelled landmark boxes, and the share of faces detected (``default`` where it finds
    none).  ``load(path)`` returns the grayscale image."""
    return _fit_calibrations({"": detector}, faces, load, {"": default})[""]


def calibrate_stages(detector: FaceDetector, faces, load) -> tuple[dict[str, Calibration], dict[str, float]]:
    """:func:`calibrate` for each stage of ``detector`` on all of ``faces`` (so a fallback
    stage is fitted on as many faces as the first): the calibrations and each stage's share
    of faces found, by stage name."""
    fits = _fit_calibrations(detector.stages, faces, load, DEFAULT_CALIBRATIONS)
    return {name: cal for name, (cal, _) in fits.items()}, {name: found for name, (_, found) in fits.items()}
