"""Weighting the tasks of a multi-task loss: learned uncertainty weights, GradNorm, and the
per-task gradient norms that show why weighting is needed.

A click's cross-entropy is below 1; the squared error of a duration in seconds can be in the
thousands. With equal weights the shared layers then follow the regression task's gradient and the
binary task learns little. ``task_gradient_norms`` measures that imbalance; static ``weights`` of
``MultiTaskLoss``, a ``TargetTransform`` (train on log1p of the duration), the learned weights of
``UncertaintyWeightedLoss`` and the gradient-balancing weights of ``GradNormLoss`` are four remedies.
"""

from __future__ import annotations

import numpy as np

from .checks import check_number
from .losses import MultiTaskLoss
from .optim import Adam


class UncertaintyWeightedLoss(MultiTaskLoss):
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

    A ``MultiTaskLoss`` whose weights are learned: ``backward`` also ADDS d L / d s into
    ``grads["log_variance"]``, and ``fit`` trains ``log_variance`` with the model's optimizer (and
    restores it with early stopping). Missing labels are handled as in ``MultiTaskLoss``.
    """

    def __init__(self, tasks=("regression", "regression"), task_names=None, initial_log_variance=0.0) -> None:
        super().__init__(tasks, weights=None, task_names=task_names)
        n_tasks = len(self.tasks)
        start = np.asarray(initial_log_variance, dtype=np.float64)
        if start.ndim == 0:
            start = np.full(n_tasks, float(start))
        if start.shape != (n_tasks,) or not np.isfinite(start).all():
            raise ValueError(f"initial_log_variance must be a finite number or {n_tasks} of them (one per task), "
                             f"got {initial_log_variance!r}")
        self.add_param("log_variance", start.copy())
        self.scale = np.array([task.uncertainty_factor for task in self.tasks])   # c_k: (T,)

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

    def backward(self) -> np.ndarray:
        """-> d L / d scores: (N, T). Adds d L / d s_k = -c_k exp(-s_k) L_k + 1/2 into grads."""
        if self.task_losses is None:
            raise RuntimeError("backward called before forward")
        self._grads["log_variance"] += 0.5 - self.weights * self.task_losses
        return super().backward()

    def __repr__(self) -> str:
        kinds = [task.kind for task in self.tasks]
        return f"UncertaintyWeightedLoss(tasks={kinds}, log_variance={self._params['log_variance']})"


def one_task_at_a_time(dscores: np.ndarray):
    """For each task k, (k, dscores with every other task's column set to 0): the upstream gradient
    of task k's term alone. Backward passes are linear, so these T passes add up to the joint one."""
    for k in range(dscores.shape[1]):
        only_task_k = np.zeros_like(dscores)
        only_task_k[:, k] = dscores[:, k]
        yield k, only_task_k


def task_gradient_norms(model, X, Y, loss=None) -> np.ndarray:
    """(T,) the norm of each task's share of the loss gradient on the shared parameters
    (``model.shared_parameters()``).

    For task k this is || d (w_k L_k) / d theta_shared || with the weights of ``loss`` (default:
    the unweighted ``MultiTaskLoss`` of the model's tasks), on the rows (X, Y) given: one forward
    pass in evaluation mode, then one backward pass per task with the other tasks' score gradients
    set to 0. When the norms differ by orders of magnitude, the largest task steers the shared layers
    alone. The model's and the loss's gradients are zeroed afterwards.
    """
    loss = loss if loss is not None else MultiTaskLoss(model.tasks, task_names=model.task_names)
    loss.check_matches(model)
    with model.mode(training=False):
        loss.forward(model.forward(X), Y)
    loss.zero_grad()
    dscores = loss.backward()                                             # (N, T)
    shared = model.shared_parameters()
    norms = np.zeros(model.n_tasks)
    for k, only_task_k in one_task_at_a_time(dscores):
        model.zero_grad()
        model.backward(only_task_k, input_grad=False)
        grads = model.grads
        norms[k] = np.sqrt(sum(float((grads[name] ** 2).sum()) for name in shared))
    model.zero_grad()
    loss.zero_grad()
    return norms


class GradNormLoss(MultiTaskLoss):
    """A ``MultiTaskLoss`` whose task weights GradNorm adapts during ``fit`` (Chen, Badrinarayanan,
    Lee and Rabinovich, ICML 2018, "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
    Deep Multitask Networks").

    At every training step, with W the weights of the last layer every task reaches
    (``model.shared_parameters(last_layer=True)``):

        G_k = || d (w_k L_k) / d W ||                   task k's gradient norm on W
        r_k = (L_k / L_k(0)) / mean_j (L_j / L_j(0))    its relative inverse training rate
        target_k = mean_j G_j * r_k^alpha               held constant when differentiating
        L_grad = sum_k |G_k - target_k|,   d L_grad / d w_k = sign(G_k - target_k) G_k / w_k

    so every task's gradient on the shared layer is pulled towards the same size, larger for a task
    that trains more slowly when ``alpha`` > 0. After each step the weights are renormalised to sum
    to T. L_k(0) are the losses of the first step.

    One departure from the paper: Adam steps the log-weights u_k = log w_k, whose gradient is
    d L_grad / d u_k = w_k d L_grad / d w_k = sign(G_k - target_k) G_k. Adam moves a parameter by
    about its learning rate per step; on w itself that cannot reach a weight of 1e-4 (what a duration
    in seconds next to a click needs) without overshooting below 0, while on log w it is a steady
    relative change. The price of GradNorm: ``backward_model`` runs the model's backward once per task.

    ``weights``: the starting weights (default 1 each), rescaled to sum to T; a warm start such as
    1 / Var(y) for a regression task in large units saves the first epochs of adaptation. Two
    cautions, measured in lesson 08 on a click next to a duration: on raw seconds the click
    recovers but the duration's ranking suffers, because the model's Adam still carries the huge
    second moments of the first, unbalanced steps; and with ``alpha`` > 0 on a target whose first
    loss is mostly an offset (log1p of a duration, untrained output 0) the duration looks like
    the fast learner and its weight collapses towards 0. ``alpha=0`` avoids the second.
    """

    def __init__(self, tasks=("regression", "regression"), alpha: float = 1.5, lr: float = 0.05,
                 weights=None, task_names=None) -> None:
        super().__init__(tasks, weights=weights, task_names=task_names)
        if not (self._weights > 0).all():
            raise ValueError(f"weights must all be > 0 for GradNorm (it steps their logarithms), got {weights!r}")
        self._weights = self._weights * (len(self.tasks) / self._weights.sum())   # sum = T
        self.log_weights = np.log(self._weights)      # u_k, what Adam steps (one array, kept)
        self.alpha = check_number("alpha", alpha, allow_zero=True)
        self.optimizer = Adam(lr=lr)
        self.initial_losses = None                 # (T,) L_k(0)
        self.grad_norms = None                     # (T,) G_k of the last step

    def target_norms(self, grad_norms: np.ndarray, task_losses: np.ndarray) -> np.ndarray:
        """(T,) mean_j G_j * r_k^alpha, from this step's gradient norms and unweighted task losses
        (the first call records L_k(0))."""
        if self.initial_losses is None:
            self.initial_losses = np.array(task_losses, dtype=float)
        ratios = np.asarray(task_losses, float) / self.initial_losses     # L_k / L_k(0)
        rates = ratios / ratios.mean()                                     # r_k
        return np.mean(grad_norms) * rates ** self.alpha

    def objective(self, grad_norms: np.ndarray, task_losses: np.ndarray) -> tuple[float, np.ndarray]:
        """L_grad and d L_grad / d weights: (T,), for the per-task gradient norms G_k (weighted by
        the current weights) and the unweighted task losses of one step."""
        grad_norms = np.asarray(grad_norms, float)
        gap = grad_norms - self.target_norms(grad_norms, task_losses)           # targets held constant
        return float(np.abs(gap).sum()), np.sign(gap) * grad_norms / self.weights

    def backward_model(self, model) -> None:
        """Add d L / d parameters into ``model.grads`` (one backward pass per task, after the
        ``forward`` of this step), then adapt the weights for the next step."""
        if self.task_losses is None:
            raise RuntimeError("backward_model called before forward")
        dscores = self.backward()                                          # (N, T), with the weights
        grads = model.grads
        last_layer = [grads[name] for name in model.shared_parameters(last_layer=True)]
        before = [grad.copy() for grad in last_layer]
        grad_norms = np.zeros(len(self.tasks))
        for k, only_task_k in one_task_at_a_time(dscores):
            model.backward(only_task_k, input_grad=False)                  # ADDS task k's gradients
            grad_norms[k] = np.sqrt(sum(float(((grad - seen) ** 2).sum()) for grad, seen in zip(last_layer, before)))
            for grad, seen in zip(last_layer, before):
                seen[...] = grad
        self.grad_norms = grad_norms
        _, dweights = self.objective(grad_norms, self.task_losses)
        self.log_weights[...] = np.log(self._weights)                     # u_k, from the current weights
        self.optimizer.step({"log_weights": self.log_weights}, {"log_weights": dweights * self.weights})
        self._weights[...] = np.exp(self.log_weights)
        self._weights *= len(self.tasks) / self._weights.sum()    # sum_k w_k = T

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self._weights.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self._weights[...] = state["weights"]
