import itertools

import numpy as np
import pytest

from minimoe.metrics import auc, log_loss, log_loss_from_logits, mse, rank_average


def auc_brute_force(y, s):
    pairs = [(p, n) for p, n in itertools.product(np.flatnonzero(y == 1), np.flatnonzero(y == 0))]
    return sum(1.0 if s[p] > s[n] else 0.5 if s[p] == s[n] else 0.0 for p, n in pairs) / len(pairs)


@pytest.mark.parametrize("seed", range(6))
def test_auc_equals_the_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 60)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    scores = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.standard_normal(n)   # odd seeds: many ties
    assert auc(y, scores) == pytest.approx(auc_brute_force(y, scores), abs=1e-12)


def test_auc_extremes():
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_rank_average_handles_ties():
    np.testing.assert_array_equal(rank_average(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4])


def test_auc_rejects_one_class_and_bad_labels():
    with pytest.raises(ValueError, match="needs both classes"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="y_true must hold only 0 and 1"):
        auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="must be 1-D of equal length"):
        auc([0, 1], [0.1, 0.2, 0.3])


def test_log_loss_and_mse_by_hand():
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    logits = np.array([2.0, -1.0])
    assert log_loss_from_logits([1, 0], logits) == pytest.approx(log_loss([1, 0], 1 / (1 + np.exp(-logits))))
    assert log_loss_from_logits([0], [1000.0]) == 1000.0
    assert mse([1.0, 2.0], [2.0, 4.0]) == 2.5
    with pytest.raises(ValueError, match=r"y_prob must lie in \[0, 1\]"):
        log_loss([1], [1.5])
