"""The shape correction: fit on known linear errors, stored and read back, chosen on validation."""

import numpy as np
import pytest
import torch

from helpers import correction, geometry, inference, landmarks68
from helpers.augment import NONE
from helpers.datasets import Item, KeypointDataset


def _similar(shapes, rng, turn=15.0, scale=(0.9, 1.1), shift=0.05):
    """Each shape turned, scaled and moved by its own random similarity (about the origin)."""
    n = len(shapes)
    factor = rng.uniform(*scale, n) * np.exp(1j * np.deg2rad(rng.uniform(-turn, turn, n)))
    moved = rng.uniform(-shift, shift, (n, 2))
    z = (shapes[..., 0] + 1j * shapes[..., 1]) * factor[:, None]
    return np.stack([z.real, z.imag], -1) + moved[:, None]


def _faces_and_predictions(n, seed, shrink=0.8, bias=(0.02, -0.01), k=68):
    """Labels and predictions with a known error in the face's frame: each face is a mean face
    plus a deformation, then turned, scaled and moved; its prediction is the same with the
    deformation shrunk (as a regression pulls towards the mean shape) and off by ``bias``."""
    rng = np.random.default_rng(seed)
    mean = np.random.default_rng(98).uniform(-0.3, 0.3, (k, 2))
    mean -= mean.mean(0)
    modes = np.random.default_rng(99).normal(0, 0.02, (4, k, 2))
    deformation = np.einsum("nm,mkd->nkd", rng.normal(0, 1, (n, 4)), modes)
    state = rng.bit_generator.state
    labels = _similar(mean + deformation, rng)
    rng.bit_generator.state = state  # the same similarity for the prediction
    return labels, _similar(mean + shrink * deformation, rng) - np.asarray(bias)


def test_without_a_ridge_it_is_the_mean_residual():
    labels, units = _faces_and_predictions(50, 0)
    fitted = correction.fit(units, labels)
    np.testing.assert_allclose(fitted.offset, (labels - units).mean(0))
    assert fitted.matrix is None and "shape_correction" not in fitted.to_settings()
    np.testing.assert_allclose(fitted(units), units + fitted.offset, atol=1e-6)


def test_an_error_that_depends_on_the_shape_is_learned_on_some_faces_and_removed_on_others():
    labels, units = _faces_and_predictions(400, 0)
    new_labels, new_units = _faces_and_predictions(100, 1)
    offset_only = correction.fit(units, labels)
    fitted = correction.fit(units, labels, ridge=1e-4)
    # the offset removes the fixed part only: the shrunk deformation is left ...
    assert np.abs(offset_only(new_units) - new_labels).max() > 0.01
    # ... and the correction, in each face's own frame, removes it, wherever the face sits
    assert np.abs(fitted(new_units) - new_labels).max() < 2e-3
    np.testing.assert_allclose(fitted.offset, offset_only.offset)


def test_a_face_moved_in_its_crop_gets_the_same_correction_moved_with_it():
    labels, units = _faces_and_predictions(200, 0)
    fitted = correction.fit(units, labels, ridge=1e-3)
    face = units[:1]
    turned = 1.1 * np.exp(1j * np.deg2rad(20.0))  # a similarity: scale 1.1, a 20 degree turn, a shift
    z = face[..., 0] + 1j * face[..., 1]
    moved_z = z * turned + (0.05 - 0.02j)
    moved = np.stack([moved_z.real, moved_z.imag], -1)
    term = fitted(face) - face - fitted.offset  # what the correction adds beyond the offset
    moved_term = fitted(moved) - moved - fitted.offset
    expected = (term[..., 0] + 1j * term[..., 1]) * turned
    np.testing.assert_allclose(moved_term, np.stack([expected.real, expected.imag], -1), atol=1e-6)


def test_a_large_ridge_leaves_the_offset_alone():
    labels, units = _faces_and_predictions(400, 0)
    strong = correction.fit(units, labels, ridge=1e6)
    # up to the bias: the mean of what the offset leaves, taken in each face's frame (small)
    np.testing.assert_allclose(strong(units), correction.fit(units, labels)(units), atol=1e-3)
    assert np.abs(strong.matrix).max() < 1e-4


def test_the_settings_round_trip_and_bad_input_is_one_line():
    labels, units = _faces_and_predictions(100, 0)
    fitted = correction.fit(units, labels, ridge=1e-3)
    settings = fitted.to_settings()
    assert set(settings) == {"offset", "shape_correction"} and settings["shape_correction"]["ridge"] == 1e-3
    again = correction.ShapeCorrection.from_settings(settings)
    np.testing.assert_allclose(again(units), fitted(units), atol=1e-6)
    assert correction.ShapeCorrection.from_settings({}) is None
    with pytest.raises(ValueError, match="must both be N x K x 2"):
        correction.fit(units, labels[:, :10])
    with pytest.raises(ValueError, match="a positive number"):
        correction.fit(units, labels, ridge=0.0)


class _LookUp(torch.nn.Module):
    """A 'network' that reads which face it is shown from the frame's first pixel and returns
    that face's row of ``units``: predictions that differ from face to face, as known."""

    def __init__(self, units):
        super().__init__()
        self.register_buffer("units", torch.as_tensor(units, dtype=torch.float32))
        self.n_points = units.shape[1]

    def forward(self, x):
        index = ((x[:, 0, 0, 0] + 0.5) * 255).round().long()  # the dataset centres pixels to [-0.5, 0.5]
        return self.units[index]


def _faces(labels, first_index, size=64):
    """Frames that carry their index in the first pixel, with ``labels`` (unit coordinates)."""
    items = []
    for k, units in enumerate(labels):
        frame = np.zeros((size, size), np.uint8)
        frame[0, 0] = first_index + k
        items.append(
            Item(frame, geometry.from_unit(units, (size, size)).astype(np.float32), geometry.IDENTITY)
        )
    return KeypointDataset(items, (size, size), NONE, landmarks68.FLIP_PERMUTATION)


def test_choose_settings_keeps_a_correction_only_where_it_pays_on_validation():
    train, train_units = _faces_and_predictions(150, 0)
    val, val_units = _faces_and_predictions(60, 1)
    model = _LookUp(np.concatenate([train_units, val_units]))
    train_ds, val_ds = _faces(train, 0), _faces(val, len(train))
    settings, scores = inference.choose_settings(
        model, val_ds, train_ds, None, allow_flip=False, ridges=(1e-4, 1e-2)
    )
    one = "one pass"
    assert scores[(one, "with offset")] > 1.0  # the shrinking is left after the offset ...
    assert scores[(one, "shape correction, ridge 0.0001")] < 0.1  # ... and the correction removes it
    assert settings["flip"] is False and settings["shape_correction"]["ridge"] == 1e-4
    # without candidates, or where none gains enough, the offset alone is kept
    assert (
        "shape_correction"
        not in inference.choose_settings(model, val_ds, train_ds, None, allow_flip=False)[0]
    )
    kept = inference.choose_settings(
        model, val_ds, train_ds, None, min_gain=10.0, allow_flip=False, ridges=(1e-4,)
    )
    assert "shape_correction" not in kept[0]
