"""Tasks: what a column of scores means, how it is scored and how it is trained.

A task is a small record: its name and its kind. The kind brings everything that depends on it (the
element-wise loss on a score and its gradient, the link from score to prediction, the evaluation
metrics, the label check), so that adding a task kind means writing one class here and adding it to
``TASK_KINDS``; no other file compares kinds.

    binary      score = a logit; loss = cross-entropy on the logit; prediction = sigmoid(score)
    regression  score = the value; loss = squared error;             prediction = the score

Models, losses and ``fit`` accept the kinds by name (``tasks=("binary", "regression")``) or as
``Task`` objects. A missing label (NaN) is handled by the losses and metrics, not here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .functions import bce_with_logits, sigmoid, squared_error
from .metrics import auc, log_loss_from_logits, mse


class Task:
    """One task of a multi-task model: a ``name`` and a kind (the subclass).

    Subclasses set ``kind`` and ``uncertainty_factor`` and implement the five methods below.
    ``uncertainty_factor`` c is the factor of the task's loss in the uncertainty-weighted objective
    c exp(-s) L + s / 2 (Kendall, Gal and Cipolla, 2018): 1/2 for a Gaussian likelihood, 1 for a
    Bernoulli one.
    """

    kind = ""
    uncertainty_factor = 1.0

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a task name must be a non-empty string, got {name!r}")
        self.name = name

    def loss(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Element-wise loss of scores against labels (same shapes)."""
        raise NotImplementedError

    def loss_gradient(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Element-wise d loss / d score."""
        raise NotImplementedError

    def link(self, scores: np.ndarray) -> np.ndarray:
        """Scores -> predictions (probabilities, values)."""
        raise NotImplementedError

    def metrics(self, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """Evaluation metrics of scores against labels (1-D, every label observed)."""
        raise NotImplementedError

    def check_labels(self, name: str, labels: np.ndarray) -> None:
        """Raise ValueError naming ``name`` if an observed label is not valid for this kind."""

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BinaryTask(Task):
    """A 0/1 label; the score is a logit."""

    kind = "binary"
    uncertainty_factor = 1.0

    def loss(self, scores, labels):
        return bce_with_logits(scores, labels)

    def loss_gradient(self, scores, labels):
        return sigmoid(scores) - labels

    def link(self, scores):
        return sigmoid(scores)

    def metrics(self, labels, scores):
        return {"auc": auc(labels, scores), "log_loss": log_loss_from_logits(labels, scores)}

    def check_labels(self, name, labels):
        bad = ~np.isnan(labels) & (labels != 0) & (labels != 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name} is a binary task, labels must be 0 or 1 (or NaN for a missing label); "
                             f"got {labels[row]} at row {row}")


class RegressionTask(Task):
    """A real-valued target; the score is the prediction."""

    kind = "regression"
    uncertainty_factor = 0.5

    def loss(self, scores, labels):
        return squared_error(scores, labels)

    def loss_gradient(self, scores, labels):
        return 2.0 * (scores - labels)

    def link(self, scores):
        return scores

    def metrics(self, labels, scores):
        return {"mse": mse(labels, scores)}


TASK_KINDS = {cls.kind: cls for cls in (BinaryTask, RegressionTask)}


def make_tasks(tasks, task_names=None) -> tuple[Task, ...]:
    """``Task`` objects from kinds by name (``("binary", "regression")``) or ``Task`` objects, with
    names from ``task_names`` (default ``task0``, ``task1``, ...; a Task keeps its own name)."""
    if isinstance(tasks, (str, Task)) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a tuple such as ('binary', 'regression'), got {tasks!r}")
    if not tasks:
        raise ValueError("tasks must name at least one task, got an empty sequence")
    if task_names is not None:
        if isinstance(task_names, str) or not isinstance(task_names, Sequence):
            raise TypeError(f"task_names must be a tuple of strings, got {task_names!r}")
        if len(task_names) != len(tasks):
            raise ValueError(f"task_names must have one name per task ({len(tasks)}), got {len(task_names)}")
    made = []
    for k, task in enumerate(tasks):
        name = task_names[k] if task_names is not None else None
        if isinstance(task, Task):
            made.append(task if name is None or name == task.name else type(task)(name))
        elif isinstance(task, str) and task in TASK_KINDS:
            made.append(TASK_KINDS[task](name if name is not None else f"task{k}"))
        else:
            raise ValueError(f"tasks[{k}] must be one of {tuple(TASK_KINDS)} or a Task, got {task!r}")
    names = [task.name for task in made]
    if len(set(names)) != len(names):
        raise ValueError(f"task_names must be distinct non-empty strings, got {tuple(names)!r}")
    return tuple(made)


def same_tasks(a: Sequence[Task], b: Sequence[Task]) -> bool:
    """True when two task lists have the same kinds in the same order (names may differ)."""
    return len(a) == len(b) and all(type(x) is type(y) for x, y in zip(a, b))
