import math

import numpy as np
import pytest

from minimoe.fusion import (
    DEFAULT_ALPHAS,
    FusionSearch,
    alpha_grid,
    grid_search,
    ndcg_at_k,
    power_product,
    top_k_total,
    weighted_sum,
)

# ------------------------------------------------------------------------ brute-force references


def ranked_rows(scores, rows):
    """Rows of one group, best first; ties: the earlier row first."""
    return sorted(rows, key=lambda n: (-scores[n], n))


def rows_by_group(groups, n):
    groups = np.zeros(n, dtype=int) if groups is None else groups
    by_group = {}
    for n_row, g in enumerate(groups):
        by_group.setdefault(g, []).append(n_row)
    return list(by_group.values())


def dcg_brute_force(relevance, ranked, k):
    return sum(relevance[n] / math.log2(r + 2) for r, n in enumerate(ranked[:k]))


def ndcg_brute_force(relevance, scores, k, groups=None):
    ratios = []
    for rows in rows_by_group(groups, len(scores)):
        ideal = dcg_brute_force(relevance, ranked_rows(relevance, rows), k)
        if ideal > 0:
            ratios.append(dcg_brute_force(relevance, ranked_rows(scores, rows), k) / ideal)
    return sum(ratios) / len(ratios)


def top_k_total_brute_force(values, scores, k, groups=None):
    totals = [sum(values[n] for n in ranked_rows(scores, rows)[:k]) for rows in rows_by_group(groups, len(scores))]
    return sum(totals) / len(totals)


def random_ranking_problem(seed):
    """Relevance with ties and zeros, scores with ties, unequal groups (some smaller than k,
    one with no relevant row), group labels that are not 0..G-1 and not sorted."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    relevance = rng.integers(0, 4, n).astype(float) * rng.choice([1.0, 0.5], n)
    scores = rng.integers(0, 6, n).astype(float) if seed % 2 else rng.standard_normal(n)
    groups = rng.choice([7, -3, 40, 12, 5], n)
    relevance[groups == 12] = 0.0                        # a group with IDCG = 0 (skipped by NDCG)
    groups[:2] = [99, 99]                                # a two-row group, smaller than most k
    relevance[:2] = [1.0, 2.0]
    return relevance, scores, groups


# -------------------------------------------------------------------------------------- fusion

def test_weighted_sum_is_the_direct_formula(rng):
    predictions = rng.standard_normal((9, 3))
    weights = np.array([0.5, -2.0, 3.0])
    expected = [sum(weights[k] * predictions[n, k] for k in range(3)) for n in range(9)]
    np.testing.assert_allclose(weighted_sum(predictions, weights), expected, rtol=1e-12)


def test_power_product_is_the_direct_formula(rng):
    predictions = np.column_stack([rng.uniform(0.01, 1.0, 11), rng.lognormal(4.0, 1.0, 11), rng.uniform(1, 3, 11)])
    exponents = np.array([0.3, 0.7, -1.5])
    expected = np.prod(predictions ** exponents, axis=1)
    np.testing.assert_allclose(power_product(predictions, exponents), expected, rtol=1e-12)
    np.testing.assert_allclose(power_product(predictions, exponents, log=True), np.log(expected), rtol=1e-12)


def test_power_product_is_stable_for_tiny_probabilities():
    # Naively 1e-300 ** 2 and 1e-301 ** 2 both underflow to 0 and the two rows tie; the log path
    # keeps them apart and ranks them correctly.
    predictions = np.array([[1e-300, 1e-300], [1e-301, 1e-301], [1e-200, 1e-200]])
    assert (predictions[:, 0] ** 1.0 * predictions[:, 1] ** 1.0)[:2].tolist() == [0.0, 0.0]
    log_scores = power_product(predictions, [1.0, 1.0], log=True)
    np.testing.assert_allclose(log_scores, 2 * np.log([1e-300, 1e-301, 1e-200]), rtol=1e-12)
    assert np.argsort(-log_scores).tolist() == [2, 0, 1]
    # Factors that underflow one by one while the product is representable.
    middle = power_product(np.array([[1e-200, 1e-200, 1e300]]), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(middle, [1e-100], rtol=1e-9)


def test_power_product_is_scale_free_and_the_weighted_sum_is_not(rng):
    predictions = np.column_stack([rng.uniform(0.01, 1.0, 200), rng.lognormal(4.0, 1.0, 200)])
    rescaled = predictions * [1.0, 1 / 60]                                  # seconds -> minutes
    for exponents in ([0.5, 0.5], [0.2, 0.8]):
        np.testing.assert_array_equal(np.argsort(-power_product(predictions, exponents)),
                                      np.argsort(-power_product(rescaled, exponents)))
    weights = [100.0, 1.0]
    assert (np.argsort(-weighted_sum(predictions, weights)) != np.argsort(-weighted_sum(rescaled, weights))).any()


def test_alpha_grid():
    grid = alpha_grid([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(grid, [[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]])
    assert alpha_grid().shape == (21, 2) and np.allclose(alpha_grid()[:, 0], np.linspace(0, 1, 21))


# -------------------------------------------------------------------------- ranking objectives

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 10, 500])
def test_ndcg_equals_a_per_group_brute_force(seed, k):
    relevance, scores, groups = random_ranking_problem(seed)
    assert ndcg_at_k(relevance, scores, k, groups) == pytest.approx(ndcg_brute_force(relevance, scores, k, groups),
                                                                    abs=1e-12)
    assert ndcg_at_k(relevance, scores, k) == pytest.approx(ndcg_brute_force(relevance, scores, k), abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 10, 500])
def test_top_k_total_equals_a_per_group_brute_force(seed, k):
    values, scores, groups = random_ranking_problem(seed)
    values = values - 1.0                                   # negative values are allowed here
    assert top_k_total(values, scores, k, groups) == pytest.approx(
        top_k_total_brute_force(values, scores, k, groups), abs=1e-12)
    assert top_k_total(values, scores, k) == pytest.approx(top_k_total_brute_force(values, scores, k), abs=1e-12)


def test_ndcg_is_one_for_a_perfect_ranking_and_lower_otherwise(rng):
    relevance = rng.integers(0, 5, 300).astype(float)
    groups = rng.integers(0, 30, 300)
    assert ndcg_at_k(relevance, relevance, 5, groups) == pytest.approx(1.0, abs=1e-12)
    assert ndcg_at_k(relevance, 2 * relevance + 7, 5, groups) == pytest.approx(1.0, abs=1e-12)   # any increasing map
    assert ndcg_at_k(relevance, -relevance, 5, groups) < 0.7


def test_ndcg_by_hand():
    # One group, ranked (row 1, row 0, row 2): DCG@2 = 1/log2(2) + 3/log2(3); IDCG@2 = 3 + 2/log2(3).
    relevance, scores = np.array([3.0, 1.0, 2.0]), np.array([0.5, 0.9, 0.1])
    assert ndcg_at_k(relevance, scores, 2) == pytest.approx((1 + 3 / math.log2(3)) / (3 + 2 / math.log2(3)))


def test_ties_are_broken_by_row_order():
    relevance = np.array([0.0, 1.0])
    assert ndcg_at_k(relevance, np.zeros(2), 1) == 0.0              # row 0 ranks first
    assert ndcg_at_k(relevance[::-1], np.zeros(2), 1) == 1.0
    assert top_k_total(np.array([5.0, 9.0, 1.0]), np.array([1.0, 1.0, 1.0]), 2) == 14.0


def test_group_labels_may_be_strings():
    relevance, scores, groups = random_ranking_problem(3)
    as_strings = np.array([f"user-{g}" for g in groups])
    assert ndcg_at_k(relevance, scores, 4, as_strings) == pytest.approx(ndcg_at_k(relevance, scores, 4, groups))
    assert top_k_total(relevance, scores, 4, as_strings) == pytest.approx(top_k_total(relevance, scores, 4, groups))


def test_groups_without_relevance_are_skipped():
    relevance = np.array([1.0, 0.0, 0.0, 0.0])
    scores = np.array([0.0, 1.0, 1.0, 0.0])
    groups = np.array([0, 0, 1, 1])
    # Group 0 ranks its relevant row second: 1/log2(3); group 1 has no relevant row and is left out.
    assert ndcg_at_k(relevance, scores, 2, groups) == pytest.approx(1 / math.log2(3))


# -------------------------------------------------------------------------------- grid search

@pytest.mark.parametrize("seed", range(5))
def test_grid_search_returns_the_brute_force_best_power(seed):
    rng = np.random.default_rng(seed)
    n = 240
    predictions = np.column_stack([rng.uniform(0.01, 1.0, n), rng.lognormal(4.0, 0.8, n)])
    utility = predictions[:, 0] * predictions[:, 1] * rng.lognormal(0.0, 0.5, n)
    groups = np.repeat(np.arange(12), 20)

    def objective(scores):
        return top_k_total(utility, scores, 5, groups)

    search = grid_search(predictions, objective)
    assert isinstance(search, FusionSearch) and search.method == "power"
    np.testing.assert_allclose(search.weights, np.column_stack([DEFAULT_ALPHAS, 1 - DEFAULT_ALPHAS]))
    brute = np.array([objective(power_product(predictions, exponents)) for exponents in search.weights])
    np.testing.assert_allclose(search.values, brute, rtol=1e-12)
    assert search.best_index == int(np.argmax(brute))
    assert search.best_value == brute.max()
    np.testing.assert_array_equal(search.best_weights, search.weights[search.best_index])


def test_grid_search_returns_the_brute_force_best_sum(rng):
    predictions = rng.standard_normal((100, 3))
    relevance = np.maximum(predictions @ [1.0, 0.5, -0.5] + 0.3 * rng.standard_normal(100), 0.0)
    grid = rng.uniform(-1, 1, (30, 3))

    def objective(scores):
        return ndcg_at_k(relevance, scores, 10)

    search = grid_search(predictions, objective, method="sum", grid=grid)
    brute = np.array([objective(weighted_sum(predictions, w)) for w in grid])
    np.testing.assert_allclose(search.values, brute, rtol=1e-12)
    assert search.best_index == int(np.argmax(brute)) and search.best_value == brute.max()
    assert search.values.std() > 0                            # the grid points really differ


def test_grid_search_ties_take_the_first_best():
    predictions = np.array([[0.5, 10.0], [0.2, 20.0], [0.9, 5.0]])
    plateau = {0: 1.0, 1: 3.0, 2: 3.0, 3: 2.0}
    calls = []

    def objective(scores):
        calls.append(scores)
        return plateau[len(calls) - 1]

    grid = [[1.0, 0.0], [0.5, 0.5], [0.25, 0.75], [0.0, 1.0]]
    search = grid_search(predictions, objective, grid=grid)
    assert search.best_index == 1 and search.best_value == 3.0
    np.testing.assert_array_equal(search.best_weights, [0.5, 0.5])
    np.testing.assert_allclose(calls[0], np.log(predictions[:, 0]))      # "power" hands over log-scores


def test_grid_search_does_not_keep_the_callers_grid():
    grid = np.array([[1.0, 0.0], [0.0, 1.0]])
    search = grid_search(np.ones((3, 2)), lambda s: 0.0, grid=grid)
    grid[0, 0] = 7.0
    assert search.weights[0, 0] == 1.0


# ------------------------------------------------------------------------------------ bad input

def test_fusion_rejects_bad_input():
    good = np.array([[0.5, 10.0], [0.2, 20.0]])
    with pytest.raises(ValueError, match="weights must have shape"):
        weighted_sum(good, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weights must be finite"):
        weighted_sum(good, [1.0, np.nan])
    with pytest.raises(ValueError, match="predictions must be finite"):
        weighted_sum([[0.5, np.inf]], [1.0, 1.0])
    with pytest.raises(ValueError, match="predictions must be 2-D"):
        power_product([0.5, 10.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"predictions\[:, 1\] must be > 0 .* at row 1"):
        power_product([[0.5, 10.0], [0.2, 0.0]], [0.5, 0.5])
    with pytest.raises(ValueError, match="exponents must have shape"):
        power_product(good, [1.0])
    with pytest.raises(TypeError, match="exponents must hold real numbers"):
        power_product(good, ["a", "b"])
    with pytest.raises(ValueError, match="alphas"):
        alpha_grid([])


def test_ranking_objectives_reject_bad_input():
    rel, scores = np.array([1.0, 0.0, 2.0]), np.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="k must be >= 1"):
        ndcg_at_k(rel, scores, 0)
    with pytest.raises(TypeError, match="k must be a positive int"):
        top_k_total(rel, scores, 2.0)
    with pytest.raises(ValueError, match="scores must have the shape of relevance"):
        ndcg_at_k(rel, scores[:2], 1)
    with pytest.raises(ValueError, match="scores must be finite"):
        top_k_total(rel, [0.1, np.nan, 0.3], 1)
    with pytest.raises(ValueError, match="relevance must be >= 0"):
        ndcg_at_k([1.0, -1.0, 0.0], scores, 1)
    with pytest.raises(ValueError, match="relevance is 0 on every row"):
        ndcg_at_k(np.zeros(3), scores, 1)
    with pytest.raises(ValueError, match=r"groups must have shape \(3,\)"):
        ndcg_at_k(rel, scores, 1, groups=[0, 1])
    with pytest.raises(ValueError, match="groups must not contain NaN"):
        top_k_total(rel, scores, 1, groups=[0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="values must be a non-empty 1-D"):
        top_k_total(np.ones((3, 1)), scores, 1)


def test_grid_search_rejects_bad_input():
    predictions = np.array([[0.5, 10.0], [0.2, 20.0], [0.9, 5.0]])

    def objective(scores):
        return float(scores[0])

    with pytest.raises(ValueError, match="method must be one of"):
        grid_search(predictions, objective, method="max")
    with pytest.raises(TypeError, match="objective must be a callable"):
        grid_search(predictions, 3.0)
    with pytest.raises(ValueError, match="grid is required for method='sum'"):
        grid_search(predictions, objective, method="sum")
    with pytest.raises(ValueError, match="grid is required for method='power' with T=3"):
        grid_search(np.ones((3, 3)), objective)
    with pytest.raises(ValueError, match="grid must have 2 columns"):
        grid_search(predictions, objective, grid=[[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="grid must be 2-D"):
        grid_search(predictions, objective, grid=[0.5, 0.5])
    with pytest.raises(ValueError, match="grid must be finite"):
        grid_search(predictions, objective, grid=[[0.5, np.nan]])
    with pytest.raises(ValueError, match=r"predictions\[:, 0\] must be > 0"):
        grid_search(-predictions, objective)
    values = iter([1.0, 2.0, np.nan])
    with pytest.raises(ValueError, match=r"objective returned nan at grid point 2 \(weights \[0.1, 0.9\]\)"):
        grid_search(predictions, lambda s: next(values), grid=[[1.0, 0.0], [0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(TypeError, match="objective must return one real number"):
        grid_search(predictions, lambda s: s)
