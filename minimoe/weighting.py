"""Weighting the tasks of a multi-task loss: learned uncertainty weights, and the per-task gradient
norms that show why weighting is needed.

A click's cross-entropy is below 1; the squared error of a duration in seconds can be in the
thousands. With equal weights the shared layers then follow the regression task's gradient and the
binary task learns little. ``task_gradient_norms`` measures that imbalance; static ``weights`` of
``MultiTaskLoss``, a ``TargetTransform`` (train on log1p of the duration) and the learned weights of
``UncertaintyWeightedLoss`` are three remedies.
"""

from __future__ import annotations

import numpy as np

from .losses import MultiTaskLoss
from .module import Module


class UncertaintyWeightedLoss(Module):
    """Task weights learned from each task's uncertainty (Kendall, Gal and Cipolla, CVPR 2018,
    "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics").

    One learnable log-variance s_k per task (parameter ``log_variance``: (T,), start 0):

        L = sum_k c_k exp(-s_k) L_k + s_k / 2,   c_k = 1/2 for regression, 1 for binary

    where L_k is task k's mean loss (squared error, or cross-entropy on logits). For regression this
    is the mean Gaussian negative log-likelihood with variance sigma_k^2 = exp(s_k), up to a
    constant; for a binary task it is the paper's approximation for a softmax with temperature
    sigma_k^2. A task with noisy labels (large L_k) learns a large s_k and so a small weight, and the
    s_k / 2 term stops every s_k from growing without end. At the optimum over s_k:
        regression: exp(s_k) = L_k (the learned variance is the task's mean squared error)
        binary:     exp(s_k) = 2 L_k

    ``initial_log_variance``: one start for every s_k, or one per task. Adam moves s_k by about
    its learning rate per step, so when a task's loss is in the thousands (a duration in seconds)
    s_k = 0 is far from its optimum log L_k; start it there (a warm start), or train on log1p.

    Same interface as ``MultiTaskLoss`` (``forward``, ``backward``, ``task_losses``, ``weights``,
    ``combine``); ``backward`` also ADDS d L / d s into ``grads["log_variance"]``, and ``fit``
    trains ``log_variance`` with the model's optimizer.
    """

    def __init__(self, tasks=("regression", "regression"), task_names=None, initial_log_variance=0.0) -> None:
        super().__init__()
        self.per_task = MultiTaskLoss(tasks, weights=None, task_names=task_names)   # unweighted L_k
        self.tasks, self.task_names = self.per_task.tasks, self.per_task.task_names
        n_tasks = len(self.tasks)
        start = np.asarray(initial_log_variance, dtype=np.float64)
        if start.ndim == 0:
            start = np.full(n_tasks, float(start))
        if start.shape != (n_tasks,) or not np.isfinite(start).all():
            raise ValueError(f"initial_log_variance must be a finite number or {n_tasks} of them (one per task), "
                             f"got {initial_log_variance!r}")
        self.add_param("log_variance", start.copy())
        self.scale = np.where(self.per_task.binary, 1.0, 0.5)               # c_k: (T,)
        self.task_losses = None

    @property
    def weights(self) -> np.ndarray:
        """(T,) the current weight c_k exp(-s_k) on each task's loss."""
        return self.scale * np.exp(-self._params["log_variance"])

    @property
    def variances(self) -> np.ndarray:
        """(T,) the learned sigma_k^2 = exp(s_k)."""
        return np.exp(self._params["log_variance"])

    def combine(self, task_losses: np.ndarray) -> float:
        return float(np.asarray(task_losses) @ self.weights + 0.5 * self._params["log_variance"].sum())

    def forward(self, scores, targets, check: bool = True) -> float:
        """scores, targets: (N, T) -> L (a float); ``task_losses`` keeps the T unweighted means."""
        self.per_task.forward(scores, targets, check=check)
        self.task_losses = self.per_task.task_losses                      # (T,)
        return self.combine(self.task_losses)

    def backward(self) -> np.ndarray:
        """-> d L / d scores: (N, T). Adds d L / d s_k = -c_k exp(-s_k) L_k + 1/2 into grads."""
        if self.task_losses is None:
            raise RuntimeError("backward called before forward")
        weights = self.weights                                            # (T,)
        self._grads["log_variance"] += 0.5 - weights * self.task_losses
        dscores = self.per_task.backward()                                # (N, T), unweighted
        return dscores * weights.astype(dscores.dtype)

    def __call__(self, scores, targets) -> float:
        return self.forward(scores, targets)

    def __repr__(self) -> str:
        return f"UncertaintyWeightedLoss(tasks={self.tasks}, log_variance={self._params['log_variance']})"


def shared_parameter_names(model) -> list[str]:
    """Names of the parameters every task's loss reaches: all but the towers and, in a model with
    one gate per task (MMoE), the gates."""
    per_task = ["towers."]
    if len(getattr(model, "gates", ())) > 1:
        per_task.append("gates.")
    return [name for name in model.params if not name.startswith(tuple(per_task))]


def task_gradient_norms(model, X, Y, loss=None) -> np.ndarray:
    """(T,) the norm of each task's share of the loss gradient on the shared parameters.

    For task k this is || d (w_k L_k) / d theta_shared || with the weights of ``loss`` (default:
    the unweighted ``MultiTaskLoss`` of the model's tasks), on the rows (X, Y) given: one forward
    pass, then one backward pass per task with the other tasks' score gradients set to 0. When the
    norms differ by orders of magnitude, the largest task steers the shared layers alone.
    The model's gradients are zeroed afterwards.
    """
    loss = loss if loss is not None else MultiTaskLoss(model.tasks, task_names=model.task_names)
    if tuple(loss.tasks) != tuple(model.tasks):
        raise ValueError(f"loss has tasks {loss.tasks} but the model has {model.tasks}")
    loss.forward(model.forward(X), Y)
    if isinstance(loss, Module):
        loss.zero_grad()
    dscores = loss.backward()                                             # (N, T)
    shared = shared_parameter_names(model)
    norms = np.zeros(model.n_tasks)
    for k in range(model.n_tasks):
        only_task_k = np.zeros_like(dscores)
        only_task_k[:, k] = dscores[:, k]
        model.zero_grad()
        model.backward(only_task_k)
        grads = model.grads
        norms[k] = np.sqrt(sum(float((grads[name] ** 2).sum()) for name in shared))
    model.zero_grad()
    return norms
