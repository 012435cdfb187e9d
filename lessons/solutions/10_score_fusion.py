"""Answers to the exercises of lesson 10 (10_score_fusion.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np and the lesson's own names come from the notebook)

# EXERCISE 10.ndcg_at_k
def ndcg_at_k(relevance, scores, k, groups):
    """Mean over groups (users) of NDCG@k, with linear gain.

    relevance: (N,) gains >= 0; scores: (N,) the ranking scores; k: the slate size; groups: (N,) a group id
    per row. Returns the mean of DCG@k / IDCG@k over the groups whose IDCG@k > 0, as a float.
    """
    ratios = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)                        # this group's rows, in row order
        gains = relevance[rows]
        discount = 1.0 / np.log2(np.arange(2, min(k, rows.size) + 2))   # 1 / log2(r + 1), r = 1 .. min(k, n)
        by_score = gains[np.argsort(-scores[rows], kind="stable")]    # ties: the earlier row first
        ideal = np.sort(gains)[::-1]                                  # the best order
        idcg = ideal[:k] @ discount
        if idcg > 0:
            ratios.append((by_score[:k] @ discount) / idcg)
    return float(np.mean(ratios))


# EXERCISE 10.expected_clicks
def slate_clicks(click_probability, scores, k):
    """Expected clicks in every user's top-k slate.

    click_probability, scores: (U, I), one row per user and one column per candidate item: the true click
    probabilities and the fused scores. A user's slate is their k highest-scored items; of two items with
    equal scores, the one in the earlier column ranks higher. Returns (U,): for each user, the sum of
    click_probability over their slate. No loop over the users.
    """
    slate = np.argsort(-scores, axis=1, kind="stable")[:, :k]        # (U, k): a stable sort keeps tied columns in order
    return np.take_along_axis(click_probability, slate, axis=1).sum(axis=1)   # (U,)
