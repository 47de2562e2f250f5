"""Figures the writeup needs: faces with keypoints (ground truth green, prediction red),
grids, loss curves, sweeps and learned filters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

TRUE_COLOR, PRED_COLOR = "limegreen", "red"


def show_keypoints(ax, image, true=None, pred=None, title: str | None = None, size: float = 12):
    """Draw an image (grayscale or RGB; float in [-0.5, 0.5] or uint8) with its keypoints."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = np.moveaxis(image, 0, -1).squeeze()
    if image.dtype != np.uint8 and image.min() < 0:
        image = image + 0.5
    ax.imshow(image, cmap="gray", vmin=0, vmax=1 if image.dtype != np.uint8 else 255)
    for pts, color in ((true, TRUE_COLOR), (pred, PRED_COLOR)):
        if pts is not None:
            pts = np.asarray(pts).reshape(-1, 2)
            ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="black", linewidths=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def grid(
    images: Sequence,
    trues=None,
    preds=None,
    titles=None,
    ncols: int = 4,
    size: float = 3.0,
    point_size: float = 12,
):
    """A grid of :func:`show_keypoints` panels; returns the figure."""
    n = len(images)
    nrows = math.ceil(n / ncols)
    first = np.asarray(images[0])
    h, w = first.shape[-2:] if first.ndim == 3 and first.shape[0] in (1, 3) else first.shape[:2]
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * size, nrows * size * h / w + 0.3 * nrows), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        show_keypoints(
            ax,
            images[k],
            None if trues is None else trues[k],
            None if preds is None else preds[k],
            None if titles is None else titles[k],
            point_size,
        )
    fig.tight_layout()
    return fig


def loss_curves(
    histories: Mapping[str, object], ax=None, log: bool = True, first_epoch: Mapping[str, int] | None = None
):
    """Train (dashed) and validation (solid) loss per epoch for one or more runs, and the
    validation loss of a run's moving average of weights (dotted, ``TrainConfig.ema_epochs``);
    ``first_epoch`` places a run that continues another (a fine-tuning stage) after it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for k, (label, h) in enumerate(histories.items()):
        color = f"C{k}"
        start = (first_epoch or {}).get(label, 1)
        epochs = np.arange(start, start + len(h.train_loss))
        ax.plot(epochs, h.train_loss, "--", color=color, label=f"{label} train")
        ax.plot(epochs, h.val_loss, "-", color=color, label=f"{label} val")
        if h.ema_val_loss:
            ax.plot(epochs, h.ema_val_loss, ":", color=color, label=f"{label} val, weight average")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def val_nme_curves(histories: Mapping[str, object], ax=None, first_epoch: Mapping[str, int] | None = None):
    """Validation NME per epoch for the runs that recorded it (``TrainConfig(select="nme")``),
    each run's kept epoch ringed, on its moving average's curve (dotted) where the run kept those
    weights; ``first_epoch`` as in :func:`loss_curves`.  The axis runs from
    just below the best kept NME to 1.5 times it: the first epochs' errors are ten times the
    last ones', and on a scale that shows them the epochs that decide the choice look flat."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    kept = []
    for k, (label, h) in enumerate(histories.items()):
        if not h.val_nme:
            continue
        start = (first_epoch or {}).get(label, 1)
        epochs = np.arange(start, start + len(h.val_nme))
        ax.plot(epochs, h.val_nme, "-", color=f"C{k}", label=label)
        if h.ema_val_nme:
            ax.plot(epochs, h.ema_val_nme, ":", color=f"C{k}", label=f"{label}, weight average")
        best = (h.ema_val_nme if h.best_is_ema else h.val_nme)[h.best_epoch]
        ax.plot(start + h.best_epoch, best, "o", mfc="none", ms=9, color=f"C{k}")
        kept.append(best)
    if kept:
        ax.set_ylim(0.95 * min(kept), 1.5 * min(kept))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NME (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def sweep(
    values: Sequence,
    errors: Sequence[float],
    name: str,
    ax=None,
    ylabel: str = "validation error (px)",
    logx=False,
):
    """Validation error against one hyper-parameter."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    labels = [str(v) for v in values]
    ax.plot(range(len(values)), errors, "o-")
    ax.set_xticks(range(len(values)), labels)
    for i, e in enumerate(errors):
        ax.annotate(f"{e:.1f}", (i, e), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    ax.set_xlabel(name)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


def filters(weight, ncols: int = 8, size: float = 1.0, title: str | None = None):
    """First-layer convolution kernels (``C_out x 1 x k x k``) as small images, each scaled on its own."""
    w = np.asarray(weight.detach().cpu() if hasattr(weight, "detach") else weight)[:, 0]
    nrows = math.ceil(len(w) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(w):
            ax.imshow(w[k], cmap="RdBu_r", vmin=-abs(w[k]).max(), vmax=abs(w[k]).max())
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
