"""Error measures: pixel error for IMM, inter-ocular NME and its CED curve for 68-point sets."""
from __future__ import annotations

import numpy as np


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance per point, ``N x K``."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=-1)


def mean_error_px(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over faces and points of the Euclidean error, in the pixels the inputs are in."""
    return float(point_errors(pred, true).mean())
