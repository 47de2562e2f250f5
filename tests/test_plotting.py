"""Plots whose marks carry a meaning a reader relies on."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from helpers import plotting  # noqa: E402
from helpers.train import History  # noqa: E402


def test_val_nme_curves_ring_the_kept_epoch_and_skip_runs_without_nme():
    first = History(train_loss=[3, 2, 1], val_loss=[3, 2, 2.5], val_nme=[6.0, 4.0, 3.5], best_epoch=2)
    tuned = History(train_loss=[1, 1], val_loss=[2, 2], val_nme=[3.4, 3.6], best_epoch=0)
    by_loss = History(train_loss=[1], val_loss=[1])  # selected by loss: no NME recorded
    ax = plotting.val_nme_curves({"first": first, "tuned": tuned, "loss": by_loss}, first_epoch={"tuned": 4})
    lines = ax.get_lines()
    assert len(lines) == 4  # a curve and a ring for each run with NME
    curve, ring, tuned_curve, tuned_ring = (np.column_stack(line.get_data()) for line in lines)
    assert np.array_equal(curve, [[1, 6.0], [2, 4.0], [3, 3.5]])
    assert np.array_equal(ring, [[3, 3.5]])  # epoch 3 (best_epoch 2, counted from 1)
    assert np.array_equal(tuned_curve[:, 0], [4, 5]) and np.array_equal(tuned_ring, [[4, 3.4]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["first", "tuned"]
    assert np.allclose(ax.get_ylim(), (0.95 * 3.4, 1.5 * 3.4))  # the late epochs, not the first ones


def test_val_nme_curves_ring_the_average_where_the_run_kept_it():
    """A run that kept its moving average of weights has that curve drawn dotted, the ring on it."""
    h = History(
        train_loss=[3, 2, 1],
        val_loss=[3, 2, 2],
        val_nme=[6.0, 4.0, 3.9],
        ema_val_loss=[4, 2, 1.5],
        ema_val_nme=[7.0, 3.8, 3.7],
        best_epoch=2,
        best_is_ema=True,
    )
    ax = plotting.val_nme_curves({"run": h})
    curve, average, ring = (np.column_stack(line.get_data()) for line in ax.get_lines())
    assert (
        np.array_equal(average, [[1, 7.0], [2, 3.8], [3, 3.7]]) and ax.get_lines()[1].get_linestyle() == ":"
    )
    assert np.array_equal(ring, [[3, 3.7]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run", "run, weight average"]
    losses = plotting.loss_curves({"run": h})
    assert [t.get_text() for t in losses.get_legend().get_texts()] == [
        "run train",
        "run val",
        "run val, weight average",
    ]
