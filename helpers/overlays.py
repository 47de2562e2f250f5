"""A fun filter: sunglasses that follow the face, placed from the 68 landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np

LEFT_EYE, RIGHT_EYE = range(36, 42), range(42, 48)  # image-left and image-right eye in the iBUG markup


def sunglasses(rgb: np.ndarray, points: np.ndarray, opacity: float = 0.9) -> np.ndarray:
    """``rgb`` with sunglasses drawn over the eyes: centred on each eye's landmarks, sized by
    the distance between the eyes and tilted with the line through them, so they turn and
    scale with the head.  Arms run towards the jaw's ends (points 0 and 16)."""
    out = rgb.copy()
    layer = rgb.copy()
    left, right = points[list(LEFT_EYE)].mean(0), points[list(RIGHT_EYE)].mean(0)
    d = float(np.linalg.norm(right - left))
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    axes = (int(0.42 * d), int(0.30 * d))
    thick = max(1, int(0.06 * d))
    for centre in (left, right):
        c = tuple(int(round(v)) for v in centre + [0, 0.05 * d])
        cv2.ellipse(layer, c, axes, angle, 0, 360, (15, 15, 25), -1, cv2.LINE_AA)
        cv2.ellipse(layer, c, axes, angle, 0, 360, (200, 160, 40), thick, cv2.LINE_AA)
        # a glint, so the lenses read as glass
        g = (int(c[0] - 0.15 * d), int(c[1] - 0.1 * d))
        cv2.ellipse(
            layer,
            g,
            (max(1, int(0.08 * d)), max(1, int(0.04 * d))),
            angle - 30,
            0,
            360,
            (230, 230, 240),
            -1,
            cv2.LINE_AA,
        )
    u = (right - left) / max(d, 1e-6)
    inner_l, inner_r = left + u * 0.42 * d, right - u * 0.42 * d
    cv2.line(layer, tuple(map(int, inner_l)), tuple(map(int, inner_r)), (200, 160, 40), thick, cv2.LINE_AA)
    for eye, jaw, sign in ((left, points[0], -1), (right, points[16], 1)):
        hinge = eye + sign * u * 0.42 * d
        cv2.line(
            layer,
            tuple(map(int, hinge)),
            tuple(map(int, 0.6 * hinge + 0.4 * jaw)),
            (200, 160, 40),
            thick,
            cv2.LINE_AA,
        )
    return cv2.addWeighted(layer, opacity, out, 1 - opacity, 0)
