"""The linear assignment problem: the one-to-one matching of rows to columns with the least total
cost, by the Hungarian method with potentials (Kuhn 1955, Munkres 1957), O(n^3).

Used to align the experts of two training runs: expert i of one run is matched to expert
``match[i]`` of the other so that the summed dissimilarity is as small as possible.
"""

from __future__ import annotations

import numpy as np


def linear_assignment(cost) -> np.ndarray:
    """cost: (n, n) finite -> match: (n,), a permutation minimising sum_i cost[i, match[i]].

    The method keeps potentials u (rows) and v (columns) with cost[i, j] - u[i] - v[j] >= 0 and
    adds one row at a time, growing the matching along a shortest augmenting path of reduced costs
    (a Dijkstra-like search over the n columns). Every step keeps the matched edges at reduced
    cost 0, so the final matching is optimal by linear-programming duality.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] == 0:
        raise ValueError(f"cost must be a non-empty square matrix, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost must be finite")
    n = cost.shape[0]
    # Columns are numbered 1..n; column 0 is a virtual start whose row is the one being added.
    row_potential = np.zeros(n + 1)
    column_potential = np.zeros(n + 1)
    row_of_column = np.zeros(n + 1, dtype=int)          # 0 = unmatched; rows are numbered 1..n too
    for row in range(1, n + 1):
        row_of_column[0] = row
        distance = np.full(n + 1, np.inf)               # shortest reduced path length to each column
        previous = np.zeros(n + 1, dtype=int)            # the column before it on that path
        done = np.zeros(n + 1, dtype=bool)
        column = 0
        while True:
            done[column] = True
            current_row = row_of_column[column]
            free = ~done[1:]                                               # (n,) columns not yet settled
            reduced = (cost[current_row - 1] - row_potential[current_row] - column_potential[1:])
            closer = free & (reduced < distance[1:])
            distance[1:][closer] = reduced[closer]
            previous[1:][closer] = column
            candidates = np.where(free, distance[1:], np.inf)
            next_column = int(np.argmin(candidates)) + 1
            delta = candidates[next_column - 1]
            # Shift potentials so settled edges stay tight and the new column's distance becomes 0.
            settled = np.flatnonzero(done)
            row_potential[row_of_column[settled]] += delta
            column_potential[settled] -= delta
            distance[1:][free] -= delta
            column = next_column
            if row_of_column[column] == 0:
                break
        while column != 0:                                                 # flip the augmenting path
            before = previous[column]
            row_of_column[column] = row_of_column[before]
            column = before
    match = np.empty(n, dtype=int)
    match[row_of_column[1:] - 1] = np.arange(n)
    return match
