import itertools

import numpy as np
import pytest

from minimoe.assignment import linear_assignment


def _brute_force(cost):
    n = len(cost)
    return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    # Small integers make ties common; Gaussians make the optimum unique.
    cost = rng.integers(0, 4, (n, n)).astype(float) if seed % 2 else rng.standard_normal((n, n))
    match = linear_assignment(cost)
    assert sorted(match.tolist()) == list(range(n))
    assert cost[np.arange(n), match].sum() == pytest.approx(_brute_force(cost), abs=1e-12)


def test_recovers_a_hidden_permutation():
    rng = np.random.default_rng(0)
    permutation = rng.permutation(30)
    cost = rng.random((30, 30)) + 1.0
    cost[np.arange(30), permutation] = 0.0
    np.testing.assert_array_equal(linear_assignment(cost), permutation)


def test_rejects_bad_costs():
    with pytest.raises(ValueError, match="square"):
        linear_assignment(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        linear_assignment(np.array([[0.0, np.inf], [1.0, 0.0]]))
