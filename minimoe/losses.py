"""Per-task losses and the weighted multi-task loss.

    L = sum_k w_k * mean_n l_k(s_nk, y_nk)

with l_k binary cross-entropy on the logit s for a ``"binary"`` task and squared error for a
``"regression"`` task. Both are written so that no logit, however large, overflows.
"""

from __future__ import annotations

import numpy as np

from .checks import check_targets, check_tasks, check_weights
from .layers import sigmoid


def bce_with_logits(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Element-wise -[y log p + (1 - y) log(1 - p)] with p = sigmoid(s), computed from s as
    max(s, 0) - s y + log(1 + exp(-|s|)): exact for any finite s, never log(0)."""
    return np.maximum(scores, 0) - scores * labels + np.log1p(np.exp(-np.abs(scores)))


def squared_error(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Element-wise (s - y)^2."""
    return (predictions - targets) ** 2


class MultiTaskLoss:
    """L = sum_k w_k mean_n l_k(scores[n, k], targets[n, k]); weights default to 1.

    ``forward(scores, targets)`` returns L as a float and keeps ``task_losses`` (the T unweighted
    means); ``backward()`` returns dL/dscores: (N, T):
        binary:      w_k (sigmoid(s) - y) / N
        regression:  w_k 2 (s - y) / N
    """

    def __init__(self, tasks=("regression", "regression"), weights=None, task_names=None) -> None:
        self.tasks, self.task_names = check_tasks(tasks, task_names)
        self.weights = check_weights(weights, len(self.tasks))
        self.binary = np.array([task == "binary" for task in self.tasks])
        self.task_losses = None

    def forward(self, scores, targets, check: bool = True) -> float:
        """scores, targets: (N, T) -> the weighted total. ``check=False`` skips the input checks
        (for callers, like ``fit``, that checked the whole data set once)."""
        if check:
            scores = np.asarray(scores)
            if scores.ndim != 2 or scores.shape[1] != len(self.tasks):
                raise ValueError(f"scores must have shape (N, {len(self.tasks)}), got {scores.shape}")
            targets = check_targets("targets", targets, self.tasks, n_rows=scores.shape[0],
                                    dtype=scores.dtype)
        self.scores, self.targets = scores, targets
        losses = np.where(self.binary, bce_with_logits(scores, targets), squared_error(scores, targets))
        self.task_losses = losses.mean(axis=0)                            # (T,)
        return self.combine(self.task_losses)

    def combine(self, task_losses: np.ndarray) -> float:
        """The total from T unweighted per-task losses: sum_k w_k L_k."""
        return float(np.asarray(task_losses) @ self.weights)

    def backward(self) -> np.ndarray:
        if self.task_losses is None:
            raise RuntimeError("backward called before forward")
        scores, targets = self.scores, self.targets
        per_element = np.where(self.binary, sigmoid(scores) - targets, 2.0 * (scores - targets))
        scale = (self.weights / scores.shape[0]).astype(scores.dtype)     # (T,): w_k / N
        return per_element * scale                                        # (N, T)

    def __call__(self, scores, targets) -> float:
        return self.forward(scores, targets)
