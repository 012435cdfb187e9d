"""Plausible wrong answers to the exercises of lesson 09; each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 09.agreement: run 0 compared with itself too: R agreements instead of R - 1
# EXERCISE 09.agreement
def agreement(aligned_usage):
    reference = aligned_usage[0]
    total_variation = 0.5 * np.abs(aligned_usage - reference).sum(axis=2)
    return 1 - total_variation.mean(axis=1), (aligned_usage.argmax(axis=2) == reference.argmax(axis=1)).mean(axis=1)


# MISTAKE 09.agreement: the total variation without its 1/2
# EXERCISE 09.agreement
def agreement(aligned_usage):
    reference, others = aligned_usage[0], aligned_usage[1:]
    total_variation = np.abs(others - reference).sum(axis=2)
    return 1 - total_variation.mean(axis=1), (others.argmax(axis=2) == reference.argmax(axis=1)).mean(axis=1)


# MISTAKE 09.agreement: the busiest expert found over the tasks (argmax on the wrong axis)
# EXERCISE 09.agreement
def agreement(aligned_usage):
    reference, others = aligned_usage[0], aligned_usage[1:]
    total_variation = 0.5 * np.abs(others - reference).sum(axis=2)
    return 1 - total_variation.mean(axis=1), (others.argmax(axis=1) == reference.argmax(axis=0)).mean(axis=1)


# MISTAKE 09.chance_agreement: the expectation moved inside the absolute value: U0 compared with flat usage 1/E
# EXERCISE 09.chance_agreement
def chance_usage_agreement(usage):
    n_experts = usage.shape[2]
    expected_tv = 0.5 * np.abs(usage[0] - 1 / n_experts).sum(axis=1)        # (T,): |E X| instead of E|X|
    return float(1 - expected_tv.mean())


# MISTAKE 09.chance_agreement: no permutation at all: the agreement of the unaligned usages
# EXERCISE 09.chance_agreement
def chance_usage_agreement(usage):
    total_variation = 0.5 * np.abs(usage[1:] - usage[0]).sum(axis=2)         # (R - 1, T)
    return float(1 - total_variation.mean())


# MISTAKE 09.chance_agreement: the mean over the E^2 pairs of experts without the factor E (divided by E twice)
# EXERCISE 09.chance_agreement
def chance_usage_agreement(usage):
    pairs = np.abs(usage[0][None, :, :, None] - usage[1:, :, None, :])
    return float(1 - 0.5 * pairs.mean(axis=(2, 3)).mean())


# MISTAKE 09.chance_agreement: run 0 counted among the runs it is compared with
# EXERCISE 09.chance_agreement
def chance_usage_agreement(usage):
    n_experts = usage.shape[2]
    pairs = np.abs(usage[0][None, :, :, None] - usage[:, :, None, :])
    return float(1 - (0.5 * pairs.sum(axis=(2, 3)) / n_experts).mean())


# MISTAKE 09.balance_loss_backward: the second term -2v / (E m^3) left out (harmless through a softmax, not here)
# EXERCISE 09.balance_loss_backward
def balance_loss_backward(gates):
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)
    m = importance.mean(axis=1, keepdims=True)
    dimportance = 2 * (importance - m) / (n_experts * m ** 2)
    return np.repeat(dimportance[:, None, :], gates.shape[1], axis=1)


# MISTAKE 09.balance_loss_backward: the sample variance (ddof=1) where the loss uses the population variance
# EXERCISE 09.balance_loss_backward
def balance_loss_backward(gates):
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)
    m = importance.mean(axis=1, keepdims=True)
    v = importance.var(axis=1, ddof=1, keepdims=True)
    dimportance = 2 * (importance - m) / ((n_experts - 1) * m ** 2) - 2 * v / (n_experts * m ** 3)
    return np.repeat(dimportance[:, None, :], gates.shape[1], axis=1)


# MISTAKE 09.balance_loss_backward: the gradient of the importances returned, not spread over the rows: (G, E)
# EXERCISE 09.balance_loss_backward
def balance_loss_backward(gates):
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)
    m = importance.mean(axis=1, keepdims=True)
    v = importance.var(axis=1, keepdims=True)
    return 2 * (importance - m) / (n_experts * m ** 2) - 2 * v / (n_experts * m ** 3)


# MISTAKE 09.balance_loss_backward: the gradient divided by the number of rows, as if the importance were a mean
# EXERCISE 09.balance_loss_backward
def balance_loss_backward(gates):
    n_experts, n_rows = gates.shape[2], gates.shape[1]
    importance = gates.sum(axis=1)
    m = importance.mean(axis=1, keepdims=True)
    v = importance.var(axis=1, keepdims=True)
    dimportance = 2 * (importance - m) / (n_experts * m ** 2) - 2 * v / (n_experts * m ** 3)
    return np.repeat(dimportance[:, None, :], n_rows, axis=1) / n_rows
