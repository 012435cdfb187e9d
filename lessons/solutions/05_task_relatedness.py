"""Answers to the exercises of lesson 05 (one block per exercise cell)."""

# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    """Mean paired gap and the half-width of its two-sided 95% interval.

    loss_worse, loss_better: (n,) test losses of two models; entry r of both comes from run r (the same
    data set). Returns the tuple (mean gap, half-width), two floats; use t975(n) for the quantile.
    """
    d = np.asarray(loss_worse, dtype=float) - np.asarray(loss_better, dtype=float)   # (n,), one per run
    n = d.size
    # the standard error of a mean of n independent draws is sigma / sqrt(n); sigma estimated with ddof=1,
    # and Student's t with n - 1 degrees of freedom for the 95% quantile
    return float(d.mean()), float(t975(n) * d.std(ddof=1) / math.sqrt(n))


# EXERCISE 05.share_resolved
def share_resolved(d):
    """Fraction of simulated studies whose paired 95% interval excludes 0.

    d: (S, n) paired differences, one study per row. Returns a float in [0, 1]. No Python loop over
    the S rows; use t975(n) for the quantile.
    """
    n = d.shape[1]
    mean = d.mean(axis=1)                                         # (S,)
    half = t975(n) * d.std(axis=1, ddof=1) / math.sqrt(n)         # (S,)
    return float(np.mean(np.abs(mean) > half))                    # below 0 or above 0: both resolve a gap
