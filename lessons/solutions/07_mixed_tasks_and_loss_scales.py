"""Answers to the exercises of lesson 07 (07_mixed_tasks_and_loss_scales.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np and the lesson's own names come from the notebook)

# EXERCISE 07.task_gradient
def task_gradient(model, loss, X, Y, k):
    """The gradient of task k's weighted loss w_k L_k on the model's shared parameters.

    model: a multi-task model; loss: an mm.MultiTaskLoss with the model's tasks (its weights w);
    X: (N, D) rows; Y: (N, T) their labels; k: a task index.
    Returns {name: gradient, the shape of model.params[name]} for every name in model.shared_parameters().
    """
    scores = model.forward(X)                                   # (N, T)
    loss.forward(scores, Y)
    dscores = loss.backward()                                   # (N, T): d (sum_j w_j L_j) / d scores, with w
    only_task_k = np.zeros_like(dscores)
    only_task_k[:, k] = dscores[:, k]                           # w_k L_k depends on column k only
    model.zero_grad()                                           # backward adds: start from zeros
    model.backward(only_task_k, input_grad=False)               # backward is linear in dscores
    grads = model.grads
    return {name: grads[name].copy() for name in model.shared_parameters()}   # copies: the next zero_grad clears grads


# EXERCISE 07.back_transform
def back_transform(z_hat, z_hat_val, y_val):
    """A log1p model's duration outputs brought back to seconds, as a median and as a mean.

    z_hat: (N,) the model's outputs (on the log1p scale) for the rows to predict;
    z_hat_val: (M,) its outputs on held-out rows, whose durations in seconds are y_val: (M,).
    Returns (v, median, mean):
      v       a float, the mean squared residual on the log scale of the held-out rows;
      median  (N,), the conditional median of the duration in seconds;
      mean    (N,), its conditional mean in seconds.
    """
    v = float(np.mean((np.log1p(y_val) - z_hat_val) ** 2))     # residual variance on the log scale
    median = np.expm1(z_hat)                                    # exp(z) - 1: exp keeps the median of a normal z
    mean = np.expm1(z_hat + v / 2)                              # E[exp(z_hat + sigma eps)] = exp(z_hat + v / 2)
    return v, median, mean
