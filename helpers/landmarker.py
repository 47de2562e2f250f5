"""One way to get 68 landmarks from a photo: build a :class:`Landmarker` once, call it.

    lm = Landmarker("checkpoints/ibug_resnet18.pt")
    for box, points in lm(image):            # the detector finds the faces
        ...
    points = lm.from_boxes(gray, [box])      # or give the boxes yourself

The notebooks, ``helpers.evaluate``, ``helpers.predict`` and the tests all go through it.
The checkpoint says how its model wants faces cropped (``preprocess``: input size and
context) and, when fitted, how to turn detector boxes into that crop (``calibration``).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from . import config, geometry
from .detect import Calibration, HaarFaceDetector
from .faces import DEFAULT_CONTEXT, crop_matrix
from .images import centre, to_unit_float
from .inference import predict_batch
from .landmarks68 import FLIP_PERMUTATION
from .train import load_checkpoint


class Landmarker:
    def __init__(self, checkpoint, device=None, flip: bool = True, detector=None):
        self.device = torch.device(device) if device else config.device()
        self.model, ckpt = load_checkpoint(checkpoint, self.device)
        pre = ckpt.get("preprocess", {})
        self.input_size = int(pre.get("input_size", 128))
        self.context = float(pre.get("context", DEFAULT_CONTEXT))
        self.flip = flip
        cal = ckpt.get("calibration")
        self.detector = detector or HaarFaceDetector(**({"calibration": Calibration(**cal)} if cal else {}))
        self.checkpoint = ckpt

    def crops(self, gray: np.ndarray, boxes) -> tuple[torch.Tensor, list[np.ndarray]]:
        mats = [crop_matrix(b, self.input_size, self.context) for b in boxes]
        size = (self.input_size, self.input_size)
        return centre(to_unit_float(np.stack([geometry.warp(gray, m, size) for m in mats]))), mats

    @torch.no_grad()
    def from_boxes(self, gray: np.ndarray, boxes) -> np.ndarray:
        """``F x 68 x 2`` landmarks in the photo's pixels for faces in ``boxes`` (left, top, w, h).

        Boxes follow the training convention (the landmarks' bounding box); a box partly or
        wholly outside the photo is fine (the crop repeats the border)."""
        if len(boxes) == 0:
            return np.zeros((0, self.model.n_points, 2), np.float32)
        batch, mats = self.crops(gray, boxes)
        units = predict_batch(self.model, batch.to(self.device), FLIP_PERMUTATION if self.flip else None).cpu().numpy()
        pixels = geometry.from_unit(units, (self.input_size, self.input_size))
        return np.stack([geometry.apply(geometry.invert(m), p) for m, p in zip(mats, pixels)])

    def detect(self, gray: np.ndarray):
        """Face boxes in the landmark-box convention, largest first."""
        return self.detector.landmark_boxes(gray)

    def __call__(self, image: np.ndarray):
        """``[(box, 68 x 2 points), ...]`` for every face the detector finds in ``image``
        (grayscale or RGB ``uint8``)."""
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
        boxes = self.detect(gray)
        return list(zip(boxes, self.from_boxes(gray, boxes)))
