"""Plausible wrong answers to the exercises of lesson 05: each must be rejected by its check."""

# MISTAKE 05.paired_gap: the population standard deviation (ddof=0) in place of the sample one
# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    d = np.asarray(loss_worse) - np.asarray(loss_better)
    return float(d.mean()), float(t975(d.size) * d.std() / math.sqrt(d.size))


# MISTAKE 05.paired_gap: the normal quantile 1.96 in place of Student's t
# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    d = np.asarray(loss_worse) - np.asarray(loss_better)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / math.sqrt(d.size))


# MISTAKE 05.paired_gap: divides by n instead of sqrt(n)
# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    d = np.asarray(loss_worse) - np.asarray(loss_better)
    return float(d.mean()), float(t975(d.size) * d.std(ddof=1) / d.size)


# MISTAKE 05.paired_gap: unpaired: combines the two models' own intervals and ignores the pairing
# EXERCISE 05.paired_gap
def paired_gap_ci95(loss_worse, loss_better):
    a, b = np.asarray(loss_worse), np.asarray(loss_better)
    n = a.size
    half = t975(n) * math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / n)
    return float(a.mean() - b.mean()), float(half)


# MISTAKE 05.share_resolved: without abs: only studies resolved in the positive direction count
# EXERCISE 05.share_resolved
def share_resolved(d):
    n = d.shape[1]
    mean = d.mean(axis=1)
    half = t975(n) * d.std(axis=1, ddof=1) / math.sqrt(n)
    return float(np.mean(mean > half))


# MISTAKE 05.share_resolved: the population standard deviation (ddof=0)
# EXERCISE 05.share_resolved
def share_resolved(d):
    n = d.shape[1]
    mean = d.mean(axis=1)
    half = t975(n) * d.std(axis=1) / math.sqrt(n)
    return float(np.mean(np.abs(mean) > half))


# MISTAKE 05.share_resolved: the number of studies S where the number of runs n belongs
# EXERCISE 05.share_resolved
def share_resolved(d):
    n = len(d)
    mean = d.mean(axis=1)
    half = t975(n) * d.std(axis=1, ddof=1) / math.sqrt(n)
    return float(np.mean(np.abs(mean) > half))


# MISTAKE 05.share_resolved: the normal quantile 1.96 in place of Student's t
# EXERCISE 05.share_resolved
def share_resolved(d):
    n = d.shape[1]
    mean = d.mean(axis=1)
    half = 1.96 * d.std(axis=1, ddof=1) / math.sqrt(n)
    return float(np.mean(np.abs(mean) > half))
