"""Plausible wrong answers to the exercises of lesson 07: each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 07.task_gradient: ignores the loss weight w_k (the unweighted mean_gradients in place of backward)
# EXERCISE 07.task_gradient
def task_gradient(model, loss, X, Y, k):
    loss.forward(model.forward(X), Y)
    dscores = loss.mean_gradients()                             # d L_k / d scores, without w_k
    only_task_k = np.zeros_like(dscores)
    only_task_k[:, k] = dscores[:, k]
    model.zero_grad()
    model.backward(only_task_k, input_grad=False)
    return {name: model.grads[name].copy() for name in model.shared_parameters()}


# MISTAKE 07.task_gradient: the other tasks' columns not set to 0: every task gets the gradient of the whole loss
# EXERCISE 07.task_gradient
def task_gradient(model, loss, X, Y, k):
    loss.forward(model.forward(X), Y)
    dscores = loss.backward()
    model.zero_grad()
    model.backward(dscores, input_grad=False)
    return {name: model.grads[name].copy() for name in model.shared_parameters()}


# MISTAKE 07.task_gradient: no model.zero_grad(): the earlier passes' gradients are still in model.grads
# EXERCISE 07.task_gradient
def task_gradient(model, loss, X, Y, k):
    loss.forward(model.forward(X), Y)
    dscores = loss.backward()
    only_task_k = np.zeros_like(dscores)
    only_task_k[:, k] = dscores[:, k]
    model.backward(only_task_k, input_grad=False)
    return {name: model.grads[name].copy() for name in model.shared_parameters()}


# MISTAKE 07.task_gradient: returns model.grads' own arrays, which the next call's zero_grad and backward overwrite
# EXERCISE 07.task_gradient
def task_gradient(model, loss, X, Y, k):
    loss.forward(model.forward(X), Y)
    dscores = loss.backward()
    only_task_k = np.zeros_like(dscores)
    only_task_k[:, k] = dscores[:, k]
    model.zero_grad()
    model.backward(only_task_k, input_grad=False)
    return {name: model.grads[name] for name in model.shared_parameters()}


# MISTAKE 07.back_transform: expm1(z) * exp(v / 2): the correction applied after taking the 1 off
# EXERCISE 07.back_transform
def back_transform(z_hat, z_hat_val, y_val):
    v = float(np.mean((np.log1p(y_val) - z_hat_val) ** 2))
    return v, np.expm1(z_hat), np.expm1(z_hat) * np.exp(v / 2)


# MISTAKE 07.back_transform: exp(z + v) - 1: the variance without its 1/2
# EXERCISE 07.back_transform
def back_transform(z_hat, z_hat_val, y_val):
    v = float(np.mean((np.log1p(y_val) - z_hat_val) ** 2))
    return v, np.expm1(z_hat), np.expm1(z_hat + v)


# MISTAKE 07.back_transform: v as np.var of the residuals (around their mean, not around 0)
# EXERCISE 07.back_transform
def back_transform(z_hat, z_hat_val, y_val):
    v = float(np.var(np.log1p(y_val) - z_hat_val))
    return v, np.expm1(z_hat), np.expm1(z_hat + v / 2)


# MISTAKE 07.back_transform: exp instead of expm1: the 1 that log1p added is never taken off
# EXERCISE 07.back_transform
def back_transform(z_hat, z_hat_val, y_val):
    v = float(np.mean((np.log1p(y_val) - z_hat_val) ** 2))
    return v, np.exp(z_hat), np.exp(z_hat + v / 2)
