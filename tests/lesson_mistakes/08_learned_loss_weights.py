"""Plausible wrong answers to the exercises of lesson 08: each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 08.uncertainty_backward: the score gradient left unweighted (the weights only in d L / d s)
# EXERCISE 08.uncertainty_backward
def uncertainty_backward(log_variance, factors, task_losses, mean_gradients):
    weights = factors * np.exp(-log_variance)
    return mean_gradients.copy(), 0.5 - weights * task_losses


# MISTAKE 08.uncertainty_backward: d L / d s with its sign flipped (d exp(-s) / ds taken as +exp(-s))
# EXERCISE 08.uncertainty_backward
def uncertainty_backward(log_variance, factors, task_losses, mean_gradients):
    weights = factors * np.exp(-log_variance)
    return mean_gradients * weights, weights * task_losses - 0.5


# MISTAKE 08.uncertainty_backward: the factors c_k forgotten: weights exp(-s_k)
# EXERCISE 08.uncertainty_backward
def uncertainty_backward(log_variance, factors, task_losses, mean_gradients):
    weights = np.exp(-log_variance)
    return mean_gradients * weights, 0.5 - weights * task_losses


# MISTAKE 08.uncertainty_backward: the s_k / 2 term forgotten in d L / d s
# EXERCISE 08.uncertainty_backward
def uncertainty_backward(log_variance, factors, task_losses, mean_gradients):
    weights = factors * np.exp(-log_variance)
    return mean_gradients * weights, -weights * task_losses


# MISTAKE 08.gradnorm_weight_gradient: the gradient with respect to w (sign * n_k), not to u = log w
# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    G = weights * unweighted_norms
    progress = task_losses / initial_losses
    targets = G.mean() * (progress / progress.mean()) ** alpha
    dlog_weights = np.sign(G - targets) * unweighted_norms
    u = step(np.log(weights), dlog_weights)
    return targets, dlog_weights, np.exp(u) * (len(weights) / np.exp(u).sum())


# MISTAKE 08.gradnorm_weight_gradient: the targets from the mean of the unweighted norms n_k
# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    G = weights * unweighted_norms
    progress = task_losses / initial_losses
    targets = unweighted_norms.mean() * (progress / progress.mean()) ** alpha
    dlog_weights = np.sign(G - targets) * G
    u = step(np.log(weights), dlog_weights)
    return targets, dlog_weights, np.exp(u) * (len(weights) / np.exp(u).sum())


# MISTAKE 08.gradnorm_weight_gradient: r_k as L_k / L_k(0), not divided by its mean over the tasks
# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    G = weights * unweighted_norms
    targets = G.mean() * (task_losses / initial_losses) ** alpha
    dlog_weights = np.sign(G - targets) * G
    u = step(np.log(weights), dlog_weights)
    return targets, dlog_weights, np.exp(u) * (len(weights) / np.exp(u).sum())


# MISTAKE 08.gradnorm_weight_gradient: the new weights rescaled to sum to 1, not to T
# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    G = weights * unweighted_norms
    progress = task_losses / initial_losses
    targets = G.mean() * (progress / progress.mean()) ** alpha
    dlog_weights = np.sign(G - targets) * G
    u = step(np.log(weights), dlog_weights)
    return targets, dlog_weights, np.exp(u) / np.exp(u).sum()


# MISTAKE 08.gradnorm_weight_gradient: the new weights not rescaled after the Adam step
# EXERCISE 08.gradnorm_weight_gradient
def gradnorm_update(weights, unweighted_norms, task_losses, initial_losses, alpha, step):
    G = weights * unweighted_norms
    progress = task_losses / initial_losses
    targets = G.mean() * (progress / progress.mean()) ** alpha
    dlog_weights = np.sign(G - targets) * G
    u = step(np.log(weights), dlog_weights)
    return targets, dlog_weights, np.exp(u)
