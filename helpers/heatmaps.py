"""Pixelwise keypoints: heatmap targets, their losses, and decoding heatmaps back to points.

A heatmap of ``h x w`` cells covers the input frame; cell ``j`` has its centre at unit
coordinate ``-1 + (2j + 1) / w`` (see :func:`helpers.geometry.to_unit`), whatever the
stride, so targets and decoders never need the input size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def unit_to_cell(units: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Unit coordinates -> continuous cell coordinates (cell centres at integers)."""
    h, w = hw
    scale = torch.tensor([w / 2.0, h / 2.0], device=units.device, dtype=units.dtype)
    return (units + 1.0) * scale - 0.5


def cell_to_unit(cells: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    h, w = hw
    scale = torch.tensor([2.0 / w, 2.0 / h], device=cells.device, dtype=cells.dtype)
    return (cells + 0.5) * scale - 1.0


def gaussian_log_targets(units: torch.Tensor, hw: tuple[int, int], sigma: float) -> torch.Tensor:
    """The logarithm of :func:`gaussian_targets`' maps, finite however far a point lies off
    the map (where the maps themselves underflow to zero)."""
    h, w = hw
    c = unit_to_cell(units, hw)
    xs = torch.arange(w, device=units.device, dtype=units.dtype)
    ys = torch.arange(h, device=units.device, dtype=units.dtype)
    log_gx = -((xs - c[..., 0:1]) ** 2) / (2 * sigma**2)  # B x K x w
    log_gy = -((ys - c[..., 1:2]) ** 2) / (2 * sigma**2)  # B x K x h
    return log_gy.unsqueeze(-1) + log_gx.unsqueeze(-2)


def gaussian_targets(units: torch.Tensor, hw: tuple[int, int], sigma: float) -> torch.Tensor:
    """``B x K x h x w`` maps with a unit-peak 2-D Gaussian (``sigma`` in cells) at each point;
    the peak sits at the exact sub-cell position, not at a rounded cell."""
    return gaussian_log_targets(units, hw, sigma).exp()


def zero_one_index(units: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Flat index of the one hot cell per point (the cell whose centre is nearest), ``B x K``."""
    h, w = hw
    c = unit_to_cell(units, hw).round().long()
    x = c[..., 0].clamp(0, w - 1)
    y = c[..., 1].clamp(0, h - 1)
    return y * w + x


def zero_one_targets(units: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``B x K x h x w`` maps that are 1 at one cell per point and 0 elsewhere."""
    h, w = hw
    out = torch.zeros(*units.shape[:2], h * w, device=units.device, dtype=units.dtype)
    out.scatter_(-1, zero_one_index(units, hw).unsqueeze(-1), 1.0)
    return out.view(*units.shape[:2], h, w)


def gaussian_mse(heatmaps: torch.Tensor, units: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean squared error against unit-peak Gaussian targets (scaled by 1000 so the numbers
    read well): the classic heatmap regression, slow to converge because nearly every cell's
    target is zero."""
    return 1000.0 * F.mse_loss(heatmaps, gaussian_targets(units, heatmaps.shape[-2:], sigma))


def zero_one_cross_entropy(heatmaps: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """Each map is a classifier over its ``h * w`` cells; the hot cell is the class."""
    b, k, h, w = heatmaps.shape
    return F.cross_entropy(heatmaps.reshape(b * k, h * w), zero_one_index(units, (h, w)).reshape(-1))


def gaussian_cross_entropy(heatmaps: torch.Tensor, units: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each map is a distribution over its cells (a softmax of the logits), fitted to the
    Gaussian target normalised to sum to one: the zero-one classifier's loss with the sub-cell
    position kept.  Reported as the KL divergence (cross-entropy minus the target's entropy),
    so a perfect fit scores zero.  At that fit the log-probabilities are a parabola, which
    :func:`decode_argmax`'s refinement reads exactly.

    The target is normalised in log space: a point that augmentation moved far outside the
    map has a Gaussian that underflows to zero in every cell, and ``target / target.sum()``
    would be 0 / 0, a NaN that ruins the weights.  In log space its target is the Gaussian's
    tail at the nearest edge, as for a point just outside the map."""
    b, k, h, w = heatmaps.shape
    log_target = gaussian_log_targets(units.float(), (h, w), sigma).reshape(b, k, -1).log_softmax(-1)
    log_p = heatmaps.float().reshape(b, k, -1).log_softmax(-1)
    target = log_target.exp()  # a cell whose target underflows adds nothing, whatever its logit
    kl = torch.where(target > 0, target * (log_target - log_p), torch.zeros_like(target))
    return kl.sum(-1).mean()


def gaussian_ce_with_points(
    heatmaps: torch.Tensor, units: torch.Tensor, sigma: float, weight: float
) -> torch.Tensor:
    """:func:`gaussian_cross_entropy` plus ``weight`` times the L1 distance (unit coordinates)
    between each map's soft-argmax point (:func:`decode_soft_argmax`) and its label.

    Why both: the cross-entropy scores every cell alike, so a little mass left on a far
    cell (the other eye corner, the other side of the jaw) costs it almost nothing, yet
    it pulls the soft-argmax point, which is what is deployed; the point term charges that
    mass by how far it pulls.  The cross-entropy keeps each map a peak around the right
    cell, which the point term alone does not ask for (integral regression, Sun et al.,
    ECCV 2018, trains on both).  With ``weight`` 0 it is the cross-entropy alone, undecoded."""
    loss = gaussian_cross_entropy(heatmaps, units, sigma)
    if not weight:
        return loss
    return loss + weight * F.l1_loss(decode_soft_argmax(heatmaps.float()), units.float())


def decode_argmax(heatmaps: torch.Tensor, refine: bool = True) -> torch.Tensor:
    """Unit coordinates of each map's maximum, refined to sub-cell precision by fitting a
    parabola to the log of the peak and its two neighbours along x and along y (exact for a
    Gaussian peak); the refinement is clipped to half a cell."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, -1)
    idx = flat.argmax(-1)
    y, x = (idx // w).to(heatmaps.dtype), (idx % w).to(heatmaps.dtype)
    if refine:
        logs = torch.log(heatmaps.clamp_min(1e-6))
        xi, yi = (idx % w), (idx // w)

        def at(dy, dx):
            yy = (yi + dy).clamp(0, h - 1)
            xx = (xi + dx).clamp(0, w - 1)
            return logs.reshape(b, k, -1).gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

        centre = at(0, 0)
        for axis, (lo, hi) in ((0, (at(0, -1), at(0, 1))), (1, (at(-1, 0), at(1, 0)))):
            denom = lo - 2 * centre + hi
            offset = torch.where(denom < -1e-6, 0.5 * (lo - hi) / denom, torch.zeros_like(denom)).clamp(
                -0.5, 0.5
            )
            if axis == 0:
                x = x + offset
            else:
                y = y + offset
    return cell_to_unit(torch.stack([x, y], -1), (h, w))


def decode_soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Integral decoding: the expected position under ``softmax(beta * heatmap)``."""
    b, k, h, w = heatmaps.shape
    prob = (beta * heatmaps).reshape(b, k, -1).softmax(-1).view(b, k, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=prob.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=heatmaps.device, dtype=prob.dtype) * 2 + 1) / h - 1
    return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], -1)


def decode_local_soft_argmax(heatmaps: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """The expected position of each map's non-negative values within the ``2 radius + 1``
    square of cells around its maximum (cut at the map's border).

    Full soft-argmax is pulled towards the middle by every cell's share of the mass, the far
    peaks a model keeps for an ambiguous point (the other eye corner, the other side of the
    jaw) and the floor of thousands of small values included; argmax with its parabola reads
    only three cells a direction.  The window keeps the interpolation of the whole peak and
    drops the rest, at a small cost: cutting a Gaussian peak of sigma = 1 cell at the window
    pulls the point up to 0.05 cell (0.2 px at stride 4) towards the peak cell's centre.  For a
    cross-entropy model the maps it reads are the softmax
    (:meth:`helpers.models.HeatmapNet.decode_maps`)."""
    b, k, h, w = heatmaps.shape
    idx = heatmaps.reshape(b, k, -1).argmax(-1)
    xs = torch.arange(w, device=heatmaps.device, dtype=heatmaps.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=heatmaps.dtype)
    near_x = ((xs - (idx % w).unsqueeze(-1)).abs() <= radius).to(heatmaps.dtype)  # B x K x w
    near_y = ((ys - (idx // w).unsqueeze(-1)).abs() <= radius).to(heatmaps.dtype)  # B x K x h
    weight = heatmaps.clamp_min(0) * near_y.unsqueeze(-1) * near_x.unsqueeze(-2)
    total = weight.sum((-1, -2)).clamp_min(1e-12)
    x = (weight.sum(-2) * xs).sum(-1) / total
    y = (weight.sum(-1) * ys).sum(-1) / total
    return cell_to_unit(torch.stack([x, y], -1), (h, w))


DECODERS = ("argmax", "argmax_cell", "soft_argmax", "local_soft_argmax")  # the methods decode() knows


def decode(heatmaps: torch.Tensor, method: str = "argmax", beta: float = 1.0) -> torch.Tensor:
    if method == "argmax":
        return decode_argmax(heatmaps)
    if method == "argmax_cell":
        return decode_argmax(heatmaps, refine=False)
    if method == "soft_argmax":
        return decode_soft_argmax(heatmaps, beta)
    if method == "local_soft_argmax":
        return decode_local_soft_argmax(heatmaps)
    raise ValueError(f"unknown decoder {method!r}: {', '.join(DECODERS)}")
