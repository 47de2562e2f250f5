"""Error measures: pixel error for IMM, inter-ocular NME and its CED curve for 68-point sets."""

from __future__ import annotations

import numpy as np


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance per point, ``N x K``."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=-1)


def mean_error_px(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over faces and points of the Euclidean error, in the pixels the inputs are in."""
    return float(point_errors(pred, true).mean())


def nme(pred: np.ndarray, true: np.ndarray, corners: tuple[int, int] = (36, 45)) -> np.ndarray:
    """Per-face normalised mean error: mean point error over the outer-eye-corner distance
    (the 300-W convention), as a fraction (multiply by 100 for percent)."""
    true = np.asarray(true, np.float64)
    iod = np.linalg.norm(true[:, corners[0]] - true[:, corners[1]], axis=-1)
    return point_errors(pred, true).mean(1) / np.maximum(iod, 1e-9)


def ced(nmes: np.ndarray, limit: float = 0.10, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds in [0, limit] and the fraction of faces at or below each."""
    thresholds = np.linspace(0.0, limit, steps)
    nmes = np.asarray(nmes, np.float64)
    return thresholds, (nmes[None, :] <= thresholds[:, None]).mean(1)


def auc(nmes: np.ndarray, limit: float = 0.10) -> float:
    """Area under the CED curve up to ``limit``, divided by ``limit`` (1.0 = every face perfect)."""
    x, y = ced(nmes, limit)
    return float(np.trapezoid(y, x) / limit)


def summary(nmes: np.ndarray, pred=None, true=None, limit: float = 0.10) -> dict:
    """The figures ``helpers.evaluate`` prints: NME mean and median (percent), failure rate
    above ``limit``, CED AUC up to ``limit`` and, when points are given, Kaggle-style MAE in px."""
    nmes = np.asarray(nmes, np.float64)
    out = {
        "faces": int(len(nmes)),
        "nme_percent": 100 * float(nmes.mean()),
        "median_nme_percent": 100 * float(np.median(nmes)),
        "failure_rate_percent": 100 * float((nmes > limit).mean()),
        "auc": auc(nmes, limit),
    }
    if pred is not None:
        finite = np.isfinite(np.asarray(pred)).all(axis=(1, 2))
        out["mae_px"] = float(np.abs(np.asarray(pred)[finite] - np.asarray(true)[finite]).mean())
    return out
