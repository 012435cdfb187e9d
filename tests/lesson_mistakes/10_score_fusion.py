"""Plausible wrong answers to the exercises of lesson 10; each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 10.ndcg_at_k: ties go to the later row (a stable ascending sort, reversed)
# EXERCISE 10.ndcg_at_k
def ndcg_at_k(relevance, scores, k, groups):
    ratios = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        gains = relevance[rows]
        discount = 1.0 / np.log2(np.arange(2, min(k, rows.size) + 2))
        by_score = gains[np.argsort(scores[rows], kind="stable")[::-1]]     # descending, but ties reversed
        idcg = np.sort(gains)[::-1][:k] @ discount
        if idcg > 0:
            ratios.append((by_score[:k] @ discount) / idcg)
    return float(np.mean(ratios))


# MISTAKE 10.ndcg_at_k: IDCG from the best order of the k items shown, not of all the user's items
# EXERCISE 10.ndcg_at_k
def ndcg_at_k(relevance, scores, k, groups):
    ratios = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        gains = relevance[rows]
        discount = 1.0 / np.log2(np.arange(2, min(k, rows.size) + 2))
        shown = gains[np.argsort(-scores[rows], kind="stable")][:k]
        idcg = np.sort(shown)[::-1] @ discount
        if idcg > 0:
            ratios.append((shown @ discount) / idcg)
    return float(np.mean(ratios))


# MISTAKE 10.ndcg_at_k: a user with nothing relevant counted as NDCG 0 instead of left out
# EXERCISE 10.ndcg_at_k
def ndcg_at_k(relevance, scores, k, groups):
    ratios = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        gains = relevance[rows]
        discount = 1.0 / np.log2(np.arange(2, min(k, rows.size) + 2))
        by_score = gains[np.argsort(-scores[rows], kind="stable")]
        idcg = np.sort(gains)[::-1][:k] @ discount
        ratios.append((by_score[:k] @ discount) / idcg if idcg > 0 else 0.0)
    return float(np.mean(ratios))


# MISTAKE 10.ndcg_at_k: discount 1 / log2(r) with ranks from 1 (off by one: the first item divides by 0)
# EXERCISE 10.ndcg_at_k
def ndcg_at_k(relevance, scores, k, groups):
    ratios = []
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        gains = relevance[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            discount = 1.0 / np.log2(np.arange(1, min(k, rows.size) + 1))
            by_score = gains[np.argsort(-scores[rows], kind="stable")]
            idcg = np.sort(gains)[::-1][:k] @ discount
            if idcg > 0:
                ratios.append((by_score[:k] @ discount) / idcg)
    return float(np.mean(ratios))


# MISTAKE 10.expected_clicks: ties go to the later column (an ascending stable sort, reversed)
# EXERCISE 10.expected_clicks
def slate_clicks(click_probability, scores, k):
    slate = np.argsort(scores, axis=1, kind="stable")[:, ::-1][:, :k]
    return np.take_along_axis(click_probability, slate, axis=1).sum(axis=1)


# MISTAKE 10.expected_clicks: argpartition picks the top k, but which tied item it keeps is arbitrary
# EXERCISE 10.expected_clicks
def slate_clicks(click_probability, scores, k):
    slate = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(click_probability, slate, axis=1).sum(axis=1)


# MISTAKE 10.expected_clicks: the mean over users (what top_k_total returns), not one number per user
# EXERCISE 10.expected_clicks
def slate_clicks(click_probability, scores, k):
    slate = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(click_probability, slate, axis=1).sum(axis=1).mean()


# MISTAKE 10.expected_clicks: the slate sorted by the click probabilities themselves (the oracle), not by the scores
# EXERCISE 10.expected_clicks
def slate_clicks(click_probability, scores, k):
    return np.sort(click_probability, axis=1)[:, ::-1][:, :k].sum(axis=1)
