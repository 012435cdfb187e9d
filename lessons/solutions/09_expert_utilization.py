"""Answers to the exercises of lesson 09 (09_expert_utilization.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np and the lesson's own names come from the notebook)

# EXERCISE 09.balance_loss_backward
def balance_loss_backward(gates):
    """The gradient of moe.balance_loss (the sum over gates of CV^2 of expert importance).

    gates: (G, N, E), any positive weights (not only softmax rows).
    Returns d balance_loss / d gates: (G, N, E).
    """
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)                                   # (G, E): I_i, a sum over rows
    m = importance.mean(axis=1, keepdims=True)                       # (G, 1)
    v = importance.var(axis=1, keepdims=True)                        # (G, 1), population variance
    dimportance = 2 * (importance - m) / (n_experts * m ** 2) - 2 * v / (n_experts * m ** 3)   # (G, E)
    return np.repeat(dimportance[:, None, :], gates.shape[1], axis=1)   # d I_i / d g_{n,i} = 1: every row alike


# EXERCISE 09.agreement
def agreement(aligned_usage):
    """Usage and top-expert agreement of every run with run 0.

    aligned_usage: (R, T, E), run r's usage U^r with its experts in run 0's order (report.usage).
    Returns (usage_agreement, top_agreement), each (R - 1,), for the runs r = 1 .. R - 1.
    """
    reference, others = aligned_usage[0], aligned_usage[1:]          # (T, E), (R - 1, T, E)
    total_variation = 0.5 * np.abs(others - reference).sum(axis=2)   # (R - 1, T)
    usage_agreement = 1 - total_variation.mean(axis=1)
    top_agreement = (others.argmax(axis=2) == reference.argmax(axis=1)).mean(axis=1)
    return usage_agreement, top_agreement


# EXERCISE 09.chance_agreement
def chance_usage_agreement(usage):
    """The chance level of the usage agreement, exactly.

    usage: (R, T, E), every run's usage U^r in its own expert numbering (not aligned).
    Returns a float: the mean over the runs r = 1 .. R - 1 of the expected usage agreement of U^0 and
    U^r[:, pi], the expectation taken over all E! permutations pi of run r's experts, each equally likely.
    Computed without listing the permutations.
    """
    # pi(i) is uniform over the experts, so E|U0[k, i] - Ur[k, pi(i)]| = (1/E) sum_j |U0[k, i] - Ur[k, j]|:
    # the total variation's expectation is half the mean over all E^2 pairs of experts, times E.
    n_experts = usage.shape[2]
    pairs = np.abs(usage[0][None, :, :, None] - usage[1:, :, None, :])        # (R - 1, T, E, E): every (i, j)
    expected_tv = 0.5 * pairs.sum(axis=(2, 3)) / n_experts                   # (R - 1, T)
    return float(1 - expected_tv.mean())
