"""Answers to the exercises of lesson 05 (one block per exercise cell)."""

# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    """Mean paired gap and the half-width of its two-sided 95% Student-t interval.

    loss_worse, loss_better: (n,) test losses of two models; entry r of both comes from run r (the same
    data set). With d = loss_worse - loss_better, return the tuple (mean of d, t975(n) * s_d / sqrt(n)),
    where s_d is the sample standard deviation of d (ddof=1).
    """
    d = np.asarray(loss_worse, dtype=float) - np.asarray(loss_better, dtype=float)   # (n,), one per run
    n = d.size
    return float(d.mean()), float(t975(n) * d.std(ddof=1) / math.sqrt(n))


# EXERCISE 05.share_resolved
def share_resolved(d):
    """Fraction of simulated studies whose paired 95% interval excludes 0.

    d: (S, n) paired differences, one study per row. A row's interval is mean +- t975(n) * s / sqrt(n),
    with s the row's sample standard deviation (ddof=1); it excludes 0 when |mean| > half-width.
    Returns a float in [0, 1]. No Python loop over the S rows.
    """
    n = d.shape[1]
    mean = d.mean(axis=1)                                         # (S,)
    half = t975(n) * d.std(axis=1, ddof=1) / math.sqrt(n)         # (S,)
    return float(np.mean(np.abs(mean) > half))
