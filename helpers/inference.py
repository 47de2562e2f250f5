"""Running a trained model over a dataset and mapping its output back to the original photos."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import geometry, metrics
from .augment import NONE


@torch.no_grad()
def predict_batch(model, images: torch.Tensor, flip_permutation: np.ndarray | None = None) -> torch.Tensor:
    """Unit-coordinate predictions for a batch; with ``flip_permutation``, also predict on the
    mirrored images and average (test-time flip augmentation).

    Mirroring a frame negates unit x exactly (``to_unit(W - 1 - x) == -to_unit(x)``), and the
    mirrored face's points must be re-labelled with the markup's permutation."""
    if flip_permutation is None:
        return model(images)
    both = model(torch.cat([images, images.flip(-1)]))  # one batch: cheaper than two calls
    out, mirrored = both[: len(images)], both[len(images):, torch.as_tensor(flip_permutation, device=both.device)]
    mirrored[..., 0] = -mirrored[..., 0]
    return (out + mirrored) / 2


@torch.no_grad()
def predict_units(model, dataset, batch_size: int = 64, device=None, flip_permutation=None) -> np.ndarray:
    """``N x K x 2`` predictions in unit coordinates on the dataset's un-augmented inputs."""
    device = device or next(model.parameters()).device
    model.eval()
    saved, dataset.augment = dataset.augment, NONE
    try:
        out = [predict_batch(model, images.to(device), flip_permutation).cpu() for images, _, _ in DataLoader(dataset, batch_size)]
    finally:
        dataset.augment = saved
    return torch.cat(out).numpy()


def predict_original(model, dataset, batch_size: int = 64, flip_permutation=None) -> np.ndarray:
    """Predictions in the original photos' pixels, ``N x K x 2`` (optionally flip-averaged)."""
    units = predict_units(model, dataset, batch_size, flip_permutation=flip_permutation)
    pixels = geometry.from_unit(units, dataset.input_wh)
    return np.stack([dataset.input_to_original(i, p) for i, p in enumerate(pixels)])


def ground_truth_original(dataset) -> np.ndarray:
    return np.stack([dataset.original_points(i) for i in range(len(dataset))])


FLIP_MIN_GAIN = 0.1  # NME points a second, mirrored pass per face must buy to be worth it


def nme_percent(model, dataset, flip_permutation=None) -> float:
    """Mean NME (%) over a dataset's faces, in the original photos' pixels."""
    pred = predict_original(model, dataset, flip_permutation=flip_permutation)
    return 100 * float(metrics.nme(pred, ground_truth_original(dataset)).mean())


def flip_pays(model, dataset, flip_permutation, min_gain: float = FLIP_MIN_GAIN) -> tuple[bool, float]:
    """Whether test-time flip averaging lowers NME on ``dataset`` (validation faces) by at
    least ``min_gain`` points, and the change it makes."""
    change = nme_percent(model, dataset, flip_permutation) - nme_percent(model, dataset)
    return change <= -min_gain, change
