"""Running a trained model over a dataset and mapping its output back to the original photos."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import geometry
from .augment import NONE


@torch.no_grad()
def predict_units(model, dataset, batch_size: int = 64, device=None) -> np.ndarray:
    """``N x K x 2`` predictions in unit coordinates on the dataset's un-augmented inputs."""
    device = device or next(model.parameters()).device
    model.eval()
    saved, dataset.augment = dataset.augment, NONE
    try:
        out = [model(images.to(device)).cpu() for images, _, _ in DataLoader(dataset, batch_size)]
    finally:
        dataset.augment = saved
    return torch.cat(out).numpy()


def predict_original(model, dataset, batch_size: int = 64) -> np.ndarray:
    """Predictions in the original photos' pixels, ``N x K x 2``."""
    units = predict_units(model, dataset, batch_size)
    pixels = geometry.from_unit(units, dataset.input_wh)
    return np.stack([dataset.input_to_original(i, p) for i, p in enumerate(pixels)])


def ground_truth_original(dataset) -> np.ndarray:
    return np.stack([dataset.original_points(i) for i in range(len(dataset))])
