"""Heatmap targets, losses and decoders."""

import numpy as np
import pytest
import torch

from helpers import heatmaps as hm
from helpers import models, train


def test_gaussian_target_peaks_where_the_point_is_and_argmax_refines_exactly():
    units = torch.tensor([[[0.1234, -0.4321], [-0.9, 0.85]]])
    maps = hm.gaussian_targets(units, (28, 28), sigma=1.5)
    assert maps.shape == (1, 2, 28, 28) and maps.max() <= 1.0
    np.testing.assert_allclose(hm.decode_argmax(maps).numpy(), units.numpy(), atol=1e-4)
    coarse = hm.decode_argmax(maps, refine=False)
    assert (coarse - units).abs().max() > 1e-3  # refinement is what makes it exact
    # soft-argmax is exact when the softmax *is* the (sampled) Gaussian, away from borders
    np.testing.assert_allclose(
        hm.decode_soft_argmax(torch.log(maps[:, :1])).numpy(), units[:, :1].numpy(), atol=1e-3
    )


def test_zero_one_target_is_one_hot_at_the_nearest_cell():
    units = torch.tensor([[[0.0, 0.0], [-1.0, 1.0]]])  # centre of a 4x4 map: a cell corner
    maps = hm.zero_one_targets(units, (4, 4))
    assert maps.sum((-1, -2)).tolist() == [[1.0, 1.0]]
    assert maps[0, 1, 3, 0] == 1.0  # bottom-left corner cell
    cell = hm.unit_to_cell(torch.tensor([[0.0, 0.0]]), (4, 4))
    np.testing.assert_allclose(cell.numpy(), [[1.5, 1.5]])
    np.testing.assert_allclose(hm.cell_to_unit(cell, (4, 4)).numpy(), [[0.0, 0.0]])


def test_losses_are_zero_or_small_at_the_target():
    units = torch.rand(2, 3, 2) * 1.6 - 0.8
    perfect = hm.gaussian_targets(units, (16, 16), 1.5)
    assert hm.gaussian_mse(perfect, units, 1.5) == 0
    logits = 30 * hm.zero_one_targets(units, (16, 16))
    assert (
        hm.zero_one_cross_entropy(logits, units)
        < 1e-3
        < hm.zero_one_cross_entropy(torch.zeros_like(logits), units)
    )
    with pytest.raises(ValueError, match="unknown decoder"):
        hm.decode(perfect, "nope")


def test_gaussian_cross_entropy_is_zero_at_its_target_and_decodes_exactly():
    units = torch.tensor([[[0.1234, -0.4321], [-0.3, 0.25]]])
    target = hm.gaussian_targets(units, (28, 28), 1.5)
    logits = torch.log(target / target.sum((-1, -2), keepdim=True))  # the softmax is the target
    assert hm.gaussian_cross_entropy(logits, units, 1.5) < 1e-5
    assert hm.gaussian_cross_entropy(torch.zeros_like(logits), units, 1.5) > 1.0
    model = models.build({"kind": "heatmap_resnet18", "n_points": 2, "logits": True})
    model.heatmaps = lambda x: logits + 7.0  # logits are free up to a constant
    np.testing.assert_allclose(model(None).numpy(), units.numpy(), atol=1e-4)
    assert torch.isfinite(
        train.criterion(train.TrainConfig(loss="heatmap_gaussian_ce"))(
            models.build({"kind": "heatmap_resnet18", "n_points": 68}),
            torch.zeros(2, 1, 64, 64),
            torch.zeros(2, 68, 2),
        )
    )


def test_gaussian_cross_entropy_survives_a_point_far_outside_the_map():
    """Augmentation can move a jaw point many cells off the map, where its Gaussian underflows
    to zero in every cell: the loss and its gradient must stay finite, the target must be the
    tail at the nearest edge, and points on the map must score as the plain formula says."""
    units = torch.tensor([[[0.2, -0.1], [6.0, 0.0]]])  # the second is 50 cells right of a 20-cell map
    logits = torch.randn(1, 2, 20, 20, requires_grad=True)
    loss = hm.gaussian_cross_entropy(logits, units, 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    rows = torch.arange(20.0)
    edge = torch.full((1, 1, 20, 20), -1e4)
    edge[0, 0, :, 19] = -((rows - 9.5) ** 2) / (2 * 0.5**2)  # the point's row Gaussian, on the last column
    assert hm.gaussian_cross_entropy(edge, units[:, 1:], 0.5) < 1e-4
    # on the map: the KL divergence from the normalised Gaussian, written out directly
    target = hm.gaussian_targets(units[:, :1], (20, 20), 0.5).reshape(1, 1, -1)
    target = target / target.sum(-1, keepdim=True)
    log_p = logits[:, :1].detach().reshape(1, 1, -1).log_softmax(-1)
    direct = torch.where(target > 0, target * (target.clamp_min(1e-30).log() - log_p), torch.zeros(()))
    assert hm.gaussian_cross_entropy(logits[:, :1].detach(), units[:, :1], 0.5) == pytest.approx(
        direct.sum().item(), rel=1e-5
    )


def test_local_soft_argmax_reads_the_peak_and_ignores_a_far_one():
    units = torch.tensor([[[0.1234, -0.4321]]])
    peak = hm.gaussian_targets(units, (28, 28), sigma=1.0)
    cell = 2 / 28  # one cell in unit coordinates; the window cuts the Gaussian's tails: 0.05 cell
    np.testing.assert_allclose(hm.decode_local_soft_argmax(peak).numpy(), units.numpy(), atol=0.05 * cell)
    # a second, lower peak far away pulls full soft-argmax off the point, not the windowed one
    far = hm.gaussian_targets(torch.tensor([[[-0.7, 0.6]]]), (28, 28), sigma=1.0)
    both = peak + 0.6 * far
    np.testing.assert_allclose(hm.decode(both, "local_soft_argmax").numpy(), units.numpy(), atol=0.05 * cell)
    probs = both / both.sum((-1, -2), keepdim=True)
    assert (hm.decode_soft_argmax(torch.log(probs)) - units).abs().max() > 0.1
    # a peak in the corner cell: the window is cut at the border and still finds the cell centre
    corner = torch.zeros(1, 1, 8, 8)
    corner[0, 0, 0, 0] = 1.0
    np.testing.assert_allclose(hm.decode_local_soft_argmax(corner).numpy(), [[[-0.875, -0.875]]])


def test_point_term_charges_stray_mass_by_how_far_it_pulls_the_soft_argmax():
    """All of a map's mass on one cell: the soft-argmax reads that cell's centre, and the point
    term is the L1 distance from there to the label, whatever the cross-entropy says."""
    units = torch.tensor([[[0.1, -0.2]]])
    logits = torch.full((1, 1, 10, 10), -30.0)  # the other cells share e^-30 of the mass
    logits[0, 0, 7, 2] = 0.0  # row 7, column 2: centre (-1 + 5/10, -1 + 15/10) = (-0.5, 0.5)
    ce = hm.gaussian_cross_entropy(logits, units, 0.5)
    both = hm.gaussian_ce_with_points(logits, units, 0.5, weight=3.0)
    assert both - ce == pytest.approx(3.0 * (abs(-0.5 - 0.1) + abs(0.5 + 0.2)) / 2, rel=1e-5)
    # at the target itself the soft-argmax is the label (away from the border): no point cost
    target = hm.gaussian_targets(units, (10, 10), 0.5)
    exact = torch.log(target / target.sum((-1, -2), keepdim=True))
    assert hm.gaussian_ce_with_points(exact, units, 0.5, weight=3.0) < 1e-4
    cfg = train.TrainConfig(loss="heatmap_gaussian_ce", sigma=0.5, point_weight=3.0)

    class KnownMaps:  # a model whose maps are the ones above, whatever it is shown
        def heatmaps(self, x):
            return logits

    assert train.criterion(cfg)(KnownMaps(), None, units) == pytest.approx(both.item())
    with pytest.raises(ValueError, match="point_weight"):
        train.TrainConfig(loss="heatmap_gaussian_ce", point_weight=-1.0)
    with pytest.raises(ValueError, match="point_weight is added to loss='heatmap_gaussian_ce' only"):
        train.TrainConfig(loss="wing", point_weight=1.0)
