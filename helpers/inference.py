"""Running a trained model over a dataset and mapping its output back to the original photos."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import geometry, metrics


@torch.inference_mode()
def predict_batch(
    model, images: torch.Tensor, flip_permutation: np.ndarray | None = None, offset=None
) -> torch.Tensor:
    """Unit-coordinate predictions for a batch; with ``flip_permutation``, also predict on the
    mirrored images and average (test-time flip augmentation); ``offset`` (``K x 2``, unit
    coordinates, see :func:`mean_residual`) is added last.

    Mirroring a frame negates unit x exactly (``to_unit(W - 1 - x) == -to_unit(x)``), and the
    mirrored face's points must be re-labelled with the markup's permutation.  The offset is
    added after averaging: it describes the labels, which a mirror image does not mirror."""
    if flip_permutation is None:
        out = model(images)
    else:
        both = model(torch.cat([images, images.flip(-1)]))  # one batch: cheaper than two calls
        out, mirrored = (
            both[: len(images)],
            both[len(images) :, torch.as_tensor(flip_permutation, device=both.device)],
        )
        mirrored[..., 0] = -mirrored[..., 0]
        out = (out + mirrored) / 2
    # in float32: a bfloat16 sum would round away most of an offset of a tenth of a pixel
    return (
        out
        if offset is None
        else out.float() + torch.as_tensor(offset, dtype=torch.float32, device=out.device)
    )


def predict_units(
    model, dataset, batch_size: int = 64, device=None, flip_permutation=None, offset=None
) -> np.ndarray:
    """``N x K x 2`` predictions in unit coordinates on the dataset's un-augmented inputs
    (by default on the model's device: the CPU for one that holds no tensors, such as an
    ONNX Runtime session, :class:`helpers.cpu_runtime.OnnxModel`)."""
    held = next(itertools.chain(model.parameters(), model.buffers()), None)
    device = device or (held.device if held is not None else torch.device("cpu"))
    model.eval()
    out = [
        predict_batch(model, images.to(device), flip_permutation, offset).cpu()
        for images, _, _ in DataLoader(dataset.unaugmented(), batch_size)
    ]
    return torch.cat(out).numpy()


def predict_original(model, dataset, batch_size: int = 64, flip_permutation=None, offset=None) -> np.ndarray:
    """Predictions in the original photos' pixels, ``N x K x 2`` (optionally flip-averaged)."""
    return units_to_original(
        predict_units(model, dataset, batch_size, flip_permutation=flip_permutation, offset=offset), dataset
    )


def units_to_original(units: np.ndarray, dataset) -> np.ndarray:
    """Unit-coordinate predictions on the dataset's un-augmented inputs -> its photos' pixels."""
    pixels = geometry.from_unit(units, dataset.input_wh)
    return np.stack([dataset.input_to_original(i, p) for i, p in enumerate(pixels)])


def ground_truth_original(dataset) -> np.ndarray:
    return np.stack([dataset.original_points(i) for i in range(len(dataset))])


FLIP_MIN_GAIN = 0.05  # NME points a second, mirrored pass per face must buy (where the time budget allows it)


def nme_percent(model, dataset, flip_permutation=None, offset=None) -> float:
    """Mean NME (%) over a dataset's faces, in the original photos' pixels."""
    return _nme_of_units(
        predict_units(model, dataset, flip_permutation=flip_permutation, offset=offset), dataset
    )


def mean_error_px(model, dataset, flip_permutation=None) -> float:
    """Mean point error in the original photos' pixels (the IMM parts' measure)."""
    pred = predict_original(model, dataset, flip_permutation=flip_permutation)
    return metrics.mean_error_px(pred, ground_truth_original(dataset))


def _nme_of_units(units: np.ndarray, dataset) -> float:
    return 100 * float(metrics.nme(units_to_original(units, dataset), ground_truth_original(dataset)).mean())


def mean_residual(model, dataset, flip_permutation=None) -> np.ndarray:
    """The mean of ``label - prediction`` per point (``K x 2``, unit coordinates of the crop)
    on ``dataset``'s un-augmented faces: a model's systematic offset from how the labels are
    placed.

    Why a model trained on flipped faces keeps one: a mirror image moves any sideways habit of
    the annotators to the other side, so the network learns the average of the two and
    predicts off the 300-W labels in x by about half a crop pixel (at 112 px), in every set,
    its own training faces included; and most training faces are YouTube frames, labelled by
    other annotators, whose habits the network partly learns.  Estimated on the 300-W
    *training* faces and added to every prediction (the notebooks show what it buys)."""
    units = predict_units(model, dataset, flip_permutation=flip_permutation)
    targets = np.stack(
        [geometry.to_unit(dataset.sample(i, augment=False)[1], dataset.input_wh) for i in range(len(dataset))]
    )
    return (targets - units).mean(0)


def choose_settings(
    model, val_ds, offset_faces, flip_permutation, min_gain: float = FLIP_MIN_GAIN, allow_flip: bool = True
) -> tuple[dict, dict]:
    """Test-time settings for a trained model, for :func:`helpers.train.record_inference`:
    the per-point offset of each way to run (:func:`mean_residual` on ``offset_faces``, the
    300-W training faces: ``offset`` for one pass, ``flip_offset`` for flip averaging, so that
    either way a user picks gets its own) and ``flip`` averaging by default, kept only if it
    lowers NME on ``val_ds`` by ``min_gain`` points with each way's own offset, and if
    ``allow_flip`` (the notebooks allow it where the time per face with it stays within their
    budget).  Also returns the validation NME of every combination, so a notebook can show
    what each buys."""
    scores, offsets = {}, way_offsets(model, offset_faces, flip_permutation)
    for flip, key in ((False, "offset"), (True, "flip_offset")):
        perm = flip_permutation if flip else None
        way = "flip averaging" if flip else "one pass"
        units = predict_units(model, val_ds, flip_permutation=perm)  # one pass scores both columns
        scores[(way, "network alone")] = _nme_of_units(units, val_ds)
        scores[(way, "with offset")] = _nme_of_units(units + np.asarray(offsets[key], np.float32), val_ds)
    use_flip = (
        allow_flip
        and scores[("flip averaging", "with offset")] <= scores[("one pass", "with offset")] - min_gain
    )
    return {"flip": use_flip, **offsets}, scores


def choose_precision(choices: dict[str, tuple[dict, dict]]) -> str:
    """Of ``{precision: choose_settings(network run in that precision, ...)}``, the precision
    whose kept way (one pass or flip averaging, each held to the time budget by
    ``allow_flip``) scores the lowest validation NME with its offset; float32 where they tie.

    Why int8 can win although it rounds: it runs in about half the time, so the time budget
    can hold flip averaging, two crops a face, for the price of one float32 crop."""
    kept = {
        precision: scores[("flip averaging" if settings["flip"] else "one pass", "with offset")]
        for precision, (settings, scores) in choices.items()
    }
    return min(kept, key=lambda p: (kept[p], p != "float32"))


def way_offsets(model, offset_faces, flip_permutation) -> dict[str, list]:
    """The per-point offset (:func:`mean_residual` on ``offset_faces``) of each way to run:
    ``offset`` for one pass and ``flip_offset`` for flip averaging, as the checkpoint stores
    them.  A model trained again on more faces measures its own, since its habits are not
    those of the run that made the choices."""
    return {
        "offset": mean_residual(model, offset_faces).tolist(),
        "flip_offset": mean_residual(model, offset_faces, flip_permutation).tolist(),
    }
