"""A correction of a model's landmarks that depends on the face's shape, learned on the
training faces after training.

The per-point offset (:func:`helpers.inference.mean_residual`) removes the part of a model's
error that is the same on every face.  Part of the rest depends on the face: how a network
trained on mirrored faces averages the annotators' left and right habits, or how it places
a point from where the others are, can vary with the pose and the expression.
:func:`fit` learns that part as a linear function of the whole predicted shape, by ridge
regression on the 300-W training faces, and :class:`ShapeCorrection` adds it to the offset.

Both the shape and the residual are taken in the *face's frame*: each predicted shape is
moved, scaled and turned onto the mean predicted shape first (a least-squares similarity),
and the correction is turned back with it.  So the correction sees pose and expression, not
where the face sits in the crop.  Fit in the crop's own coordinates instead, it scored
better on validation with the labelled boxes (which are the true landmarks' bounding boxes)
and worse from the face detector's boxes, where a face sits elsewhere in its crop.

Why ridge regression, not a second network: the correction has ``(2K)^2`` weights, fits in
closed form in a second, costs microseconds per face, and its ridge, chosen on validation,
keeps it to the directions of shape the training faces show clearly.  It is fit on the
un-augmented training faces, where a network errs less than on new faces; whether it pays
is decided on the validation photos, like flip averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGES = (1e-3, 3e-3, 1e-2, 3e-2, 0.1)  # what validation chooses from (see :func:`fit`)
PARTS = ("reference", "bias", "mean", "matrix")  # of a linear term, as a checkpoint stores them


def _complex(points: np.ndarray) -> np.ndarray:
    """``(..., K, 2)`` points as ``(..., K)`` complex numbers: a similarity (a scale and a
    turn) is then one multiplication."""
    return points[..., 0] + 1j * points[..., 1]


def _points(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], -1)


def _to_face_frame(units: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each shape moved to its centroid and turned and scaled onto ``reference`` (complex,
    centred) by least squares; returns the shapes in that frame (complex, ``N x K``) and each
    shape's factor (``N x 1``: multiply a vector by it to take it into the frame, divide to
    take it back)."""
    z = _complex(units)
    z = z - z.mean(1, keepdims=True)
    factor = (np.conj(z) * reference).sum(1, keepdims=True) / (np.abs(z) ** 2).sum(1, keepdims=True)
    return z * factor, factor


@dataclass(frozen=True)
class ShapeCorrection:
    """``units + offset``, plus with a ``matrix`` a term linear in the shape in the face's frame.

    ``offset`` (``K x 2``, unit coordinates of the crop) is the mean residual.  The linear
    term: ``reference`` (``K x 2``), the centred mean predicted shape that defines the face's
    frame; in it, ``bias + (shape - mean) @ matrix`` on shapes flattened as ``x0, y0, x1, ...``
    (``bias`` and ``mean`` ``K x 2``, ``matrix`` ``2K x 2K``), turned back to the crop."""

    offset: np.ndarray
    reference: np.ndarray | None = None
    bias: np.ndarray | None = None
    mean: np.ndarray | None = None
    matrix: np.ndarray | None = None
    ridge: float | None = None

    def __call__(self, units: np.ndarray) -> np.ndarray:
        """Corrected ``N x K x 2`` predictions (float32, as the network's)."""
        units = np.asarray(units, np.float64)
        out = units + self.offset
        if self.matrix is not None:
            shapes, factor = _to_face_frame(units, _complex(self.reference))
            flat = (_points(shapes) - self.mean).reshape(len(units), -1)
            term = self.bias + (flat @ self.matrix).reshape(units.shape)
            out = out + _points(_complex(term) / factor)
        return out.astype(np.float32)

    def to_settings(self) -> dict:
        """The checkpoint's form (:func:`helpers.checkpoint.inference_settings` checks it):
        ``offset`` as before, and a ``shape_correction`` only where there is a linear term."""
        out = {"offset": self.offset.tolist()}
        if self.matrix is not None:
            out["shape_correction"] = {
                **{name: getattr(self, name).tolist() for name in PARTS},
                "ridge": self.ridge,
            }
        return out

    @classmethod
    def from_settings(cls, settings: dict) -> ShapeCorrection | None:
        """The correction that checked inference settings describe (``None`` without an offset)."""
        if settings.get("offset") is None:
            return None
        offset = np.asarray(settings["offset"], np.float64)
        linear = settings.get("shape_correction")
        if linear is None:
            return cls(offset)
        parts = {name: np.asarray(linear[name], np.float64) for name in PARTS}
        return cls(offset, **parts, ridge=linear.get("ridge"))


def fit(units: np.ndarray, targets: np.ndarray, ridge: float | None = None) -> ShapeCorrection:
    """The correction from predictions ``units`` to labels ``targets`` (both ``N x K x 2``,
    unit coordinates): the mean residual, plus with ``ridge`` a linear term in the face's
    frame by ridge regression of what the offset leaves.  ``ridge`` is in units of the
    shapes' mean variance in that frame, so one value means the same for any number of faces,
    crop or model: directions of shape that vary by much less than that are left alone."""
    units, targets = np.asarray(units, np.float64), np.asarray(targets, np.float64)
    if units.shape != targets.shape or units.ndim != 3 or units.shape[-1] != 2:
        raise ValueError(f"predictions {units.shape} and labels {targets.shape} must both be N x K x 2")
    offset = (targets - units).mean(0)
    if ridge is None:
        return ShapeCorrection(offset)
    if not ridge > 0:
        raise ValueError(f"ridge={ridge!r}: a positive number (None for the offset alone)")
    reference = _complex(units.mean(0))
    reference = reference - reference.mean()
    shapes, factor = _to_face_frame(units, reference)
    left = _points((_complex(targets - units - offset)) * factor)  # what the offset leaves, in the frame
    mean, bias = _points(shapes).mean(0), left.mean(0)
    x = (_points(shapes) - mean).reshape(len(units), -1)
    y = (left - bias).reshape(len(units), -1)
    cov = x.T @ x / len(x)
    penalty = ridge * np.trace(cov) / len(cov)
    matrix = np.linalg.solve(cov + penalty * np.eye(len(cov)), x.T @ y / len(x))
    return ShapeCorrection(offset, _points(reference), bias, mean, matrix, float(ridge))
