"""Keypoint-aware augmentation: a random affine map (flip, rotation, scale, shift) and photometric jitter.

The geometric part returns a matrix for :mod:`helpers.geometry`, so image and keypoints
move together, and a flag saying whether the face was mirrored: a mirrored face must
also have its points re-labelled left<->right with the markup's permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from . import geometry


@dataclass(frozen=True)
class Augment:
    """Ranges for random augmentation, in the model's input frame.

    ``max_shift`` is in input pixels; ``scale`` is a (low, high) zoom range; brightness and
    contrast are the relative jitter amplitudes (0.2 means factors in [0.8, 1.2]).
    """

    max_rotation: float = 15.0
    max_shift: float = 10.0
    scale: tuple[float, float] = (1.0, 1.0)
    flip_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2

    def sample_affine(self, rng: np.random.Generator, frame_wh: tuple[int, int]) -> tuple[np.ndarray, bool]:
        """A random map from the un-augmented input frame to the augmented one."""
        flipped = bool(rng.random() < self.flip_p)
        angle = rng.uniform(-self.max_rotation, self.max_rotation)
        zoom = rng.uniform(*self.scale)
        dx, dy = rng.uniform(-self.max_shift, self.max_shift, size=2)
        mats = [geometry.hflip(frame_wh[0])] if flipped else []
        mats += [geometry.rotate(geometry.frame_center(frame_wh), angle, zoom), geometry.shift(dx, dy)]
        return geometry.compose(*mats), flipped

    def jitter(self, rng: np.random.Generator, image: torch.Tensor) -> torch.Tensor:
        """Brightness and contrast jitter on a float image in [0, 1] (torchvision's own ops)."""
        if self.brightness:
            image = TF.adjust_brightness(image, float(rng.uniform(1 - self.brightness, 1 + self.brightness)))
        if self.contrast:
            image = TF.adjust_contrast(image, float(rng.uniform(1 - self.contrast, 1 + self.contrast)))
        return image


NONE = Augment(max_rotation=0.0, max_shift=0.0, flip_p=0.0, brightness=0.0, contrast=0.0)


def flip_labels(points: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Re-label a mirrored face: the new point ``i`` is the old point ``permutation[i]``."""
    return points[permutation]
