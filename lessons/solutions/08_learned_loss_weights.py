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
def gradnorm_weight_gradient(weights, unweighted_norms, targets):
    """d L_grad / d w for GradNorm's L_grad = sum_k |w_k n_k - target_k|, the targets held constant.

    weights: (T,) the w_k; unweighted_norms: (T,) the n_k = || grad_W L_k ||; targets: (T,) the target_k.
    Returns (T,), the derivative of L_grad with respect to each w_k.
    """
    return np.sign(weights * unweighted_norms - targets) * unweighted_norms   # d|G_k - t_k|/dG_k * dG_k/dw_k
