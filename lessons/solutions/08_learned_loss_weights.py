"""Answers to the exercises of lesson 08 (08_learned_loss_weights.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np and the lesson's own names come from the notebook)

# EXERCISE 08.uncertainty_backward
def uncertainty_backward(log_variance, factors, task_losses, mean_gradients):
    """Gradients of the uncertainty-weighted loss L = sum_k c_k exp(-s_k) L_k + s_k / 2.

    log_variance: (T,) the s_k; factors: (T,) the c_k (1/2 for regression, 1 for binary);
    task_losses: (T,) the unweighted mean losses L_k; mean_gradients: (N, T), column k holding
    d L_k / d scores[:, k], the gradient of task k's unweighted mean loss.
    Returns (dscores, dlog_variance): d L / d scores, (N, T), and d L / d s, (T,).
    """
    weights = factors * np.exp(-log_variance)            # (T,) c_k exp(-s_k)
    dscores = mean_gradients * weights                   # (N, T): each column scaled by its weight
    dlog_variance = 0.5 - weights * task_losses          # (T,): -c_k exp(-s_k) L_k + 1/2
    return dscores, dlog_variance


# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    """One GradNorm update of the task weights, the targets held constant.

    weights: (T,) the current w_k (they sum to T); unweighted_norms: (T,) the n_k = || grad_W L_k ||;
    task_losses: (T,) this step's unweighted L_k; initial_losses: (T,) the L_k(0); alpha: a float;
    step: step(u, du) -> (T,) the log-weights after one Adam step from u, (T,), with gradient du, (T,).
    Returns (targets, dlog_weights, new_weights): the target norms (T,), d L_grad / d u (T,) at
    u = log(weights), and the new weights (T,), which sum to T.
    """
    G = weights * unweighted_norms                                   # (T,) weighted norms G_k = w_k n_k
    progress = task_losses / initial_losses                          # (T,) L_k / L_k(0)
    rates = progress / progress.mean()                               # (T,) r_k
    targets = G.mean() * rates ** alpha                              # (T,) held constant below
    dlog_weights = np.sign(G - targets) * G                          # d|G_k - t_k| / dG_k * dG_k / du_k, dG_k/du_k = G_k
    u = step(np.log(weights), dlog_weights)                          # one Adam step on u = log w
    new_weights = np.exp(u) * (len(weights) / np.exp(u).sum())       # rescaled to sum to T
    return targets, dlog_weights, new_weights
