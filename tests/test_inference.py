"""Predicting, the per-point offset and flip averaging."""

import numpy as np
import pytest
import torch

from helpers import geometry, landmarks68
from helpers.augment import NONE


class _Fixed(torch.nn.Module):
    """A 'network' that ignores the image and returns fixed unit coordinates."""

    def __init__(self, units):
        super().__init__()
        self.register_buffer("units", torch.as_tensor(units, dtype=torch.float32))
        self.n_points = len(units)

    def forward(self, x):
        return self.units.expand(len(x), -1, -1).clone()


def _symmetric_face_dataset(n=4, size=32):
    """Identical frames whose 68 labels are left/right symmetric (so a mirror image has the same labels)."""
    from helpers.datasets import Item, KeypointDataset

    rng = np.random.default_rng(0)
    p = rng.uniform(4, size - 5, (68, 2))
    mirrored = p[landmarks68.FLIP_PERMUTATION] * [-1, 1] + [size - 1, 0]
    points = ((p + mirrored) / 2).astype(np.float32)
    items = [Item(np.zeros((size, size), np.uint8), points, geometry.IDENTITY.copy()) for _ in range(n)]
    return KeypointDataset(items, (size, size), NONE, landmarks68.FLIP_PERMUTATION), points


def test_offset_is_the_mean_residual_and_added_after_flip_averaging():
    from helpers import inference

    ds, points = _symmetric_face_dataset()
    truth = geometry.to_unit(points, (32, 32))
    biased = _Fixed(truth + [0.05, -0.02])  # off by a fixed amount, as a habit of the labels would make it
    offset = inference.mean_residual(biased, ds)
    np.testing.assert_allclose(offset, np.tile([-0.05, 0.02], (68, 1)), atol=1e-6)
    assert inference.nme_percent(biased, ds, offset=offset) == pytest.approx(0.0, abs=1e-4)
    # mirroring moves the sideways part to the other side: flip averaging cancels x only ...
    flipped = inference.predict_batch(biased, torch.zeros(1, 1, 32, 32), landmarks68.FLIP_PERMUTATION)[
        0
    ].numpy()
    np.testing.assert_allclose(flipped - truth, np.tile([0.0, -0.02], (68, 1)), atol=1e-6)
    # ... and an offset is added after the averaging, so it is not mirrored away
    with_offset = inference.predict_batch(
        biased, torch.zeros(1, 1, 32, 32), landmarks68.FLIP_PERMUTATION, [0.03, 0.0]
    )[0].numpy()
    np.testing.assert_allclose(with_offset - flipped, np.tile([0.03, 0.0], (68, 1)), atol=1e-6)
    # both ways are exact once each has its own offset: a second pass buys nothing, so it stays off
    settings, scores = inference.choose_settings(biased, ds, ds, landmarks68.FLIP_PERMUTATION)
    assert settings["flip"] is False
    np.testing.assert_allclose(settings["offset"], offset, atol=1e-6)
    # flip averaging's own offset corrects only the part the average keeps (y), not the x it cancels
    np.testing.assert_allclose(settings["flip_offset"], np.tile([0.0, 0.02], (68, 1)), atol=1e-6)
    # a model trained again measures the same two offsets without choosing anything
    offsets = inference.way_offsets(biased, ds, landmarks68.FLIP_PERMUTATION)
    assert offsets == {key: settings[key] for key in ("offset", "flip_offset")}
    assert scores[("one pass", "network alone")] > 1.0 and scores[("one pass", "with offset")] < 1e-3
    # where a second pass does pay, it is kept, unless the model's time budget forbids it
    assert (
        inference.choose_settings(biased, ds, ds, landmarks68.FLIP_PERMUTATION, min_gain=-1.0)[0]["flip"]
        is True
    )
    assert (
        inference.choose_settings(
            biased, ds, ds, landmarks68.FLIP_PERMUTATION, min_gain=-1.0, allow_flip=False
        )[0]["flip"]
        is False
    )


def test_choose_precision_takes_the_kept_way_that_validates_best():
    """Each precision is scored by the way its settings keep (flip averaging only where the
    time budget allowed it), not by its best way: int8 wins here through flip averaging,
    which float32 could not afford."""
    from helpers.inference import choose_precision

    def run(flip, one, both):
        scores = {("one pass", "with offset"): one, ("flip averaging", "with offset"): both}
        return {"flip": flip}, scores

    assert choose_precision({"float32": run(False, 3.28, 3.19), "int8": run(True, 3.31, 3.22)}) == "int8"
    assert choose_precision({"float32": run(False, 3.28, 3.19), "int8": run(False, 3.31, 3.22)}) == "float32"
    assert choose_precision({"int8": run(True, 3.31, 3.25), "float32": run(False, 3.25, 3.19)}) == "float32"
