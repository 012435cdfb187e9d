"""The weighted multi-task loss, with labels that may be missing.

    L = sum_k w_k L_k,    L_k = mean over the rows n labelled for task k of l_k(s_nk, y_nk)

with l_k the task's element-wise loss (``tasks.py``: cross-entropy on the logit for a binary task,
squared error for a regression task). A NaN label means "not observed for this task" (a watch time
exists only after a click): it is left out of that task's mean and sends no gradient. A batch in
which a task has no label contributes 0 for it, not NaN.

``MultiTaskLoss`` is the base of every loss ``fit`` trains with: ``UncertaintyWeightedLoss`` and
``GradNormLoss`` (``weighting.py``) change how the weights are made, not how the losses are.
"""

from __future__ import annotations

import numpy as np

from .checks import check_targets, check_weights
from .functions import bce_with_logits, squared_error  # noqa: F401  (re-exported: the losses' math)
from .module import Module
from .tasks import make_tasks, same_tasks


class MultiTaskLoss(Module):
    """L = sum_k w_k L_k over the tasks' labelled rows; weights default to 1.

    ``forward(scores, targets)`` returns L as a float and keeps ``task_losses`` (the T unweighted
    means) and ``task_counts`` (the T numbers of labelled rows); ``backward()`` returns dL/dscores
    (N, T), 0 where a label is missing:
        binary:      w_k (sigmoid(s) - y) / N_k
        regression:  w_k 2 (s - y) / N_k
    with N_k the rows labelled for task k. ``backward_model(model)`` runs the model's backward pass
    with it (``fit`` calls that; ``GradNormLoss`` runs one per task).

    Subclasses with trainable parameters register them (``fit`` trains them with the model's
    optimizer and restores them with early stopping); the weights are ``weights``.
    """

    def __init__(self, tasks=("regression", "regression"), weights=None, task_names=None) -> None:
        super().__init__()
        self.tasks = make_tasks(tasks, task_names)
        self.task_names = tuple(task.name for task in self.tasks)
        self._weights = check_weights(weights, len(self.tasks))
        self.task_losses = None

    @property
    def weights(self) -> np.ndarray:
        """(T,) the weight w_k of each task's mean loss."""
        return self._weights

    def combine(self, task_losses) -> float:
        """The total from T unweighted per-task losses: sum_k w_k L_k."""
        return float(np.asarray(task_losses) @ self.weights)

    def check_matches(self, model) -> None:
        """A clear error unless the model has tasks of the same kinds in the same order."""
        if not same_tasks(self.tasks, model.tasks):
            raise ValueError(f"loss has tasks {[t.kind for t in self.tasks]} but the model has "
                             f"{[t.kind for t in model.tasks]}")

    def forward(self, scores, targets, check: bool = True) -> float:
        """scores, targets: (N, T) -> the weighted total. NaN targets are missing labels.
        ``check=False`` skips the input checks (for callers, like ``fit``, that checked the data)."""
        if check:
            scores = np.asarray(scores)
            if scores.ndim != 2 or scores.shape[1] != len(self.tasks):
                raise ValueError(f"scores must have shape (N, {len(self.tasks)}), got {scores.shape}")
            targets = check_targets("targets", targets, self.tasks, n_rows=scores.shape[0], dtype=scores.dtype,
                                    allow_empty_task=True)
        labelled = ~np.isnan(targets)                                             # (N, T)
        if labelled.all():
            self.labelled, self.targets = None, targets
            self.task_counts = np.full(len(self.tasks), scores.shape[0])
        else:                                     # a missing label's value can reach no loss or gradient
            self.labelled, self.targets = labelled, np.where(labelled, targets, 0.0).astype(scores.dtype)
            self.task_counts = labelled.sum(axis=0)
        self.scores = scores
        per_element = np.stack([task.loss(scores[:, k], self.targets[:, k]) for k, task in enumerate(self.tasks)],
                               axis=1)                                            # (N, T)
        if self.labelled is not None:
            per_element = np.where(self.labelled, per_element, 0.0)
        self.task_losses = per_element.sum(axis=0) / np.maximum(self.task_counts, 1)   # (T,), 0 if no label
        return self.combine(self.task_losses)

    def mean_gradients(self) -> np.ndarray:
        """(N, T): d L_k / d scores[:, k] of each unweighted task mean, 0 on unlabelled rows."""
        if self.task_losses is None:
            raise RuntimeError("backward called before forward")
        scores, targets = self.scores, self.targets
        per_element = np.stack([task.loss_gradient(scores[:, k], targets[:, k]) for k, task in enumerate(self.tasks)],
                               axis=1)                                            # (N, T)
        if self.labelled is not None:
            per_element = np.where(self.labelled, per_element, 0.0)
        return per_element / np.maximum(self.task_counts, 1).astype(scores.dtype)

    def backward(self) -> np.ndarray:
        """dL / dscores: (N, T)."""
        dscores = self.mean_gradients()
        return dscores * self.weights.astype(dscores.dtype)

    def backward_model(self, model) -> None:
        """Add d L / d parameters into ``model.grads`` (after this step's ``forward``): one backward
        pass with ``backward()`` as the upstream gradient; d L / d X is not needed."""
        model.backward(self.backward(), input_grad=False)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of what training changes in this loss (its parameters), for early stopping."""
        return {name: value.copy() for name, value in self.params.items()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put back what ``state()`` returned."""
        params = self.params
        for name, value in state.items():
            params[name][...] = value

    def __call__(self, scores, targets) -> float:
        return self.forward(scores, targets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={[t.kind for t in self.tasks]}, weights={self.weights.tolist()})"
