"""NME, CED, AUC and pixel errors on known values."""

import numpy as np
import pytest

from helpers import metrics


def test_metrics_nme_ced_auc():
    true = np.zeros((2, 68, 2))
    true[:, 45, 0] = 100.0  # outer eye corners 100 px apart
    pred = true.copy()
    pred[1, :, 1] += 5.0  # every point 5 px off: NME 5 %
    np.testing.assert_allclose(metrics.nme(pred, true), [0.0, 0.05])
    x, y = metrics.ced(np.array([0.0, 0.05]))
    assert y[0] == 0.5 and y[-1] == 1.0
    assert metrics.auc(np.zeros(3)) == pytest.approx(1.0)
    assert metrics.auc(np.array([0.05])) == pytest.approx(0.5, abs=1e-3)
    assert metrics.auc(np.array([np.inf])) == 0.0


def test_metrics_known_values():
    pred = np.array([[[0.0, 0.0], [3.0, 4.0]]])
    true = np.zeros((1, 2, 2))
    np.testing.assert_allclose(metrics.point_errors(pred, true), [[0.0, 5.0]])
    assert metrics.mean_error_px(pred, true) == 2.5
