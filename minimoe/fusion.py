"""Score fusion: turn T per-task predictions into one ranking score, and choose how by grid search.

A feed ranks its candidates by one number per item, but a multi-task model predicts T of them
(a click probability, a watch duration in seconds, ...). Two ways to fuse them:

    weighted sum     s = sum_k w_k v_k
    power product    s = prod_k v_k ** a_k      (every v_k > 0)

A weighted sum is at the mercy of the columns' scales: a probability in (0, 1] next to durations
in the hundreds of seconds is ranked by the durations unless the weights undo the scales, and
measuring a duration in minutes instead of seconds changes the ranking. A power product is
log-linear, log s = sum_k a_k log v_k, so multiplying a column by a constant c > 0 adds the same
a_k log c to every item's log-score: the ranking does not change. With v = (p_click, duration)
and a = (alpha, 1 - alpha), alpha = 1/2 ranks exactly by p_click * duration, the expected watch
time when both predictions are right.

The weights or exponents are chosen offline: ``grid_search`` scores every grid point on validation
rows with an objective the user gives (higher is better). Two ranking objectives are provided,
``ndcg_at_k`` and ``top_k_total``; both rank within groups (a user's or a query's candidate list)
and average over groups, vectorised with one lexsort instead of a loop over groups.

Ties in scores are broken by row order everywhere here: of two rows with equal scores, the earlier
row ranks higher (the sorts are stable). This is deterministic but not neutral: a scorer that ties
everything gets the ranking of the row order, so do not feed rows sorted by relevance.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .checks import check_matrix, check_positive_int

METHODS = ("power", "sum")
DEFAULT_ALPHAS = np.linspace(0.0, 1.0, 21)   # the default grid of grid_search for T = 2, method "power"


# ----------------------------------------------------------------------------------------- checks

def _check_predictions(predictions) -> np.ndarray:
    """(N, T) finite float64 predictions, one column per task."""
    return check_matrix("predictions", predictions, dtype=np.float64, cols_name="columns (one per task)")


def _check_vector(name: str, value, length: int, what: str) -> np.ndarray:
    """A finite 1-D float64 array of ``length`` entries (``what`` says what one entry is)."""
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), {what}, got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} must be finite, found {array[index]} at index {index}")
    return array


def _check_positive_columns(predictions: np.ndarray) -> None:
    """A power product takes the log of every prediction: each must be > 0."""
    bad = predictions <= 0                                              # (N, T)
    if bad.any():
        column = int(np.flatnonzero(bad.any(axis=0))[0])
        row = int(np.argmax(bad[:, column]))
        raise ValueError(f"predictions[:, {column}] must be > 0 for a power product (it takes the log), "
                         f"got {predictions[row, column]} at row {row}")


# ----------------------------------------------------------------------------------------- fusion

def weighted_sum(predictions, weights) -> np.ndarray:
    """(N,) fused scores s_n = sum_k weights[k] * predictions[n, k].

    predictions: (N, T) finite; weights: (T,) finite (any sign). The scales of the columns matter:
    the column with the largest spread times weight decides the ranking.
    """
    predictions = _check_predictions(predictions)
    weights = _check_vector("weights", weights, predictions.shape[1], "one weight per prediction column")
    return predictions @ weights                                        # (N,)


def power_product(predictions, exponents, log: bool = False) -> np.ndarray:
    """(N,) fused scores s_n = prod_k predictions[n, k] ** exponents[k], or log s_n with ``log=True``.

    predictions: (N, T), every entry finite and > 0 (a click probability in (0, 1], a duration
    > 0); exponents: (T,) finite. Computed in log space, log s = sum_k a_k log v_k, then
    exponentiated:

    * the product of many small factors underflows term by term even when the result itself is
      representable (1e-200 * 1e-200 * 1e300 is 0 in floating point, 1e-100 through the logs);
    * a ranking depends only on the order of the scores, and log is increasing, so ``log=True``
      ranks exactly as the product does, and never under- or overflows: use it to rank. With
      ``log=False`` a product below about 1e-308 (above 1e308) still comes back as 0 (inf),
      because that is the float64 range, and such rows tie.
    """
    predictions = _check_predictions(predictions)
    exponents = _check_vector("exponents", exponents, predictions.shape[1], "one exponent per prediction column")
    _check_positive_columns(predictions)
    log_scores = np.log(predictions) @ exponents                        # (N,)
    return log_scores if log else np.exp(log_scores)


def alpha_grid(alphas=DEFAULT_ALPHAS) -> np.ndarray:
    """(G, 2) exponent pairs (alpha, 1 - alpha), one per alpha: the power-product grid for two
    tasks (alpha = 1 ranks by the first column alone, alpha = 0 by the second)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or not np.isfinite(alphas).all():
        raise ValueError(f"alphas must be a non-empty 1-D array of finite numbers, got {alphas!r}")
    return np.stack([alphas, 1.0 - alphas], axis=1)                     # (G, 2)


# ------------------------------------------------------------------------------ ranking objectives

def _check_ranking_inputs(values_name: str, values, scores, k, groups):
    """values, scores: (N,) finite float64; k >= 1; groups -> (N,) integer ids 0..n_groups-1."""
    values = np.asarray(values)
    scores = np.asarray(scores)
    for name, array in ((values_name, values), ("scores", scores)):
        if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating)
                                       or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if scores.shape != values.shape:
        raise ValueError(f"scores must have the shape of {values_name} {values.shape}, got {scores.shape}")
    values, scores = values.astype(np.float64), scores.astype(np.float64)
    for name, array in ((values_name, values), ("scores", scores)):
        if not np.isfinite(array).all():
            row = int(np.flatnonzero(~np.isfinite(array))[0])
            raise ValueError(f"{name} must be finite, found {array[row]} at row {row}")
    k = check_positive_int("k", k)
    return values, scores, k, _group_ids(groups, values.size)


def _group_ids(groups, n_rows: int) -> tuple[np.ndarray, int]:
    """groups (N,) of any sortable labels (user ids, query strings) -> (N,) ids 0..G-1 and G."""
    if groups is None:
        return np.zeros(n_rows, dtype=np.intp), 1
    groups = np.asarray(groups)
    if groups.shape != (n_rows,):
        raise ValueError(f"groups must have shape ({n_rows},), one group id per row, got {groups.shape}")
    if np.issubdtype(groups.dtype, np.floating) and not np.isfinite(groups).all():
        raise ValueError("groups must not contain NaN or inf")
    labels, ids = np.unique(groups, return_inverse=True)
    return ids.reshape(n_rows), labels.size


def _top_k_in_groups(sort_by: np.ndarray, group_ids: np.ndarray, n_groups: int, k: int):
    """Rank rows within their group by ``sort_by`` descending (ties: earlier row first).

    Returns ``order`` (N,) the rows grouped and ranked, ``sorted_groups`` (N,) each sorted row's
    group, ``rank`` (N,) its 0-based rank within the group, and ``in_top_k`` (N,) rank < k.
    """
    order = np.lexsort((-sort_by, group_ids))       # stable: primary key group, then score descending
    sorted_groups = group_ids[order]                                    # (N,) ascending
    counts = np.bincount(group_ids, minlength=n_groups)                 # (G,)
    first_position = np.cumsum(counts) - counts                         # (G,) where each group starts
    rank = np.arange(order.size) - first_position[sorted_groups]        # (N,)
    return order, sorted_groups, rank, rank < k


def _discounted_gain(relevance, sort_by, group_ids, n_groups, k) -> np.ndarray:
    """(G,) DCG@k per group: sum over the top k of relevance / log2(rank + 1), ranks from 1."""
    order, sorted_groups, rank, in_top_k = _top_k_in_groups(sort_by, group_ids, n_groups, k)
    gains = relevance[order] / np.log2(rank + 2.0)                      # rank is 0-based here
    return np.bincount(sorted_groups[in_top_k], weights=gains[in_top_k], minlength=n_groups)


def ndcg_at_k(relevance, scores, k: int, groups=None) -> float:
    """Mean over groups of NDCG@k = DCG@k / IDCG@k; higher is better, 1 for a perfect ranking.

    relevance: (N,) finite and >= 0; scores: (N,) finite; groups: optional (N,) ids (a user's or a
    query's candidates); without it all rows are one group. Within each group, rank the rows by
    score (ties: the earlier row first) and take

        DCG@k = sum_{r=1..min(k, n_group)} relevance_(r) / log2(r + 1)

    with linear gain (the relevance itself, not 2^rel - 1: a watch time in seconds is a gain as it
    stands). IDCG@k is the same sum with the rows sorted by relevance, the best any scorer can do.
    A group with fewer than k rows counts all of them. Groups whose IDCG is 0 (no row with a
    positive relevance) have no ranking to get right and are left out of the mean; if every group
    is left out, ValueError.
    """
    relevance, scores, k, (group_ids, n_groups) = _check_ranking_inputs("relevance", relevance, scores, k, groups)
    if (relevance < 0).any():
        row = int(np.argmax(relevance < 0))
        raise ValueError(f"relevance must be >= 0 (a gain), got {relevance[row]} at row {row}")
    dcg = _discounted_gain(relevance, scores, group_ids, n_groups, k)        # (G,)
    ideal = _discounted_gain(relevance, relevance, group_ids, n_groups, k)   # (G,)
    rated = ideal > 0
    if not rated.any():
        raise ValueError("relevance is 0 on every row of every group: NDCG is undefined")
    return float(np.mean(dcg[rated] / ideal[rated]))


def top_k_total(values, scores, k: int, groups=None) -> float:
    """Mean over groups of the sum of ``values`` over the k highest-scored rows of the group.

    values: (N,) finite, e.g. each item's expected watch time, so that the result is the expected
    total watch time of a top-k slate; scores: (N,) finite; groups: optional (N,) ids, without it
    all rows are one group. Ties in scores: the earlier row first. A group with fewer than k rows
    sums all of them.
    """
    values, scores, k, (group_ids, n_groups) = _check_ranking_inputs("values", values, scores, k, groups)
    order, sorted_groups, _, in_top_k = _top_k_in_groups(scores, group_ids, n_groups, k)
    totals = np.bincount(sorted_groups[in_top_k], weights=values[order][in_top_k], minlength=n_groups)  # (G,)
    return float(totals.mean())


# ------------------------------------------------------------------------------------- grid search

@dataclass(frozen=True)
class FusionSearch:
    """What ``grid_search`` tried and found.

    weights: (G, T) the grid (weights for "sum", exponents for "power"); values: (G,) the
    objective at each grid point; best_index: the first grid point with the largest value;
    best_weights: (T,) its weights; best_value: its objective value; method: "power" or "sum".
    """

    weights: np.ndarray
    values: np.ndarray
    best_index: int
    best_weights: np.ndarray
    best_value: float
    method: str


def _check_grid(grid, method: str, n_tasks: int) -> np.ndarray:
    if grid is None:
        if method == "power" and n_tasks == 2:
            return alpha_grid(DEFAULT_ALPHAS)
        raise ValueError(f"grid is required for method={method!r} with T={n_tasks} prediction columns "
                         f"(the default, exponents (alpha, 1 - alpha) for alpha in 0, 0.05, ..., 1, "
                         f"is only for method='power' with T=2)")
    if isinstance(grid, (str, bytes)):
        raise TypeError(f"grid must be a (G, {n_tasks}) array of weight vectors, got {grid!r}")
    grid = np.asarray(grid)
    if grid.ndim != 2:
        raise ValueError(f"grid must be 2-D (G, {n_tasks}), one weight vector per row, got shape {grid.shape}")
    return check_matrix("grid", grid, n_cols=n_tasks, dtype=np.float64,
                        cols_name="columns (one per prediction column)").copy()   # never the caller's array


def _objective_value(objective, scores: np.ndarray, index: int, weights: np.ndarray) -> float:
    value = objective(scores)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)) \
            or np.ndim(value) != 0 or not np.issubdtype(np.asarray(value).dtype, np.number):
        raise TypeError(f"objective must return one real number, got {value!r} at grid point {index} "
                        f"(weights {weights.tolist()})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"objective returned {value} at grid point {index} (weights {weights.tolist()}); "
                         f"it must be finite")
    return value


def grid_search(predictions, objective: Callable[[np.ndarray], float], method: str = "power",
                grid: Sequence | np.ndarray | None = None) -> FusionSearch:
    """Score every grid point's fused scores with ``objective`` and return the best (highest).

    predictions: (N, T) validation predictions; objective: fused scores (N,) -> one finite number,
    higher is better (e.g. ``lambda s: ndcg_at_k(relevance, s, 10, groups)``); method: "power"
    (power product, the grid holds exponents) or "sum" (weighted sum, the grid holds weights);
    grid: (G, T). The default grid, only for "power" with T = 2, is (alpha, 1 - alpha) for alpha
    in ``DEFAULT_ALPHAS`` = 0, 0.05, ..., 1.

    For "power" the objective is given the log of the power product, sum_k a_k log v_k: it ranks
    exactly as the product and never under- or overflows (see ``power_product``), so pass an
    objective that depends on the ranking only, as the ranking objectives here do.

    Ties: the first grid point with the largest value wins. An objective value that is not a
    finite number raises, naming the grid point. All G fused scores are computed with one matrix
    product, (N, T) @ (T, G); the objective is then called G times, each on its own array.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not callable(objective):
        raise TypeError(f"objective must be a callable fused scores (N,) -> float, got {type(objective).__name__}")
    predictions = _check_predictions(predictions)
    grid = _check_grid(grid, method, predictions.shape[1])               # (G, T)
    if method == "power":
        _check_positive_columns(predictions)
        fused = np.log(predictions) @ grid.T                             # (N, G) log-scores
    else:
        fused = predictions @ grid.T                                     # (N, G)
    values = np.array([_objective_value(objective, np.ascontiguousarray(fused[:, g]), g, grid[g])
                       for g in range(grid.shape[0])])                   # (G,)
    best = int(np.argmax(values))                                        # the first of equal maxima
    return FusionSearch(weights=grid, values=values, best_index=best, best_weights=grid[best].copy(),
                        best_value=float(values[best]), method=method)
