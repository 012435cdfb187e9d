"""minimoe's multi-task losses in PyTorch, with missing labels as minimoe defines them
(``minimoe/losses.py``):

    L = combine(L_1, ..., L_T),   L_k = mean over the rows labelled for task k of l_k(s_nk, y_nk)

with l_k the cross-entropy on the logit (binary) or the squared error (regression). A NaN label
is missing: left out of its task's mean, no gradient; a task with no label in the batch gives 0.
``MultiTaskLoss`` combines with static weights, ``UncertaintyWeightedLoss`` with learned
log-variances. Both combine affinely, which is what lets ``distributed.py`` split a batch over
processes and still get the whole batch's gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

KINDS = ("binary", "regression")
UNCERTAINTY_FACTORS = {"binary": 1.0, "regression": 0.5}   # c_k of Kendall et al.'s objective, as minimoe's tasks


def task_loss_sums(scores: torch.Tensor, targets: torch.Tensor, kinds) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums, counts), each (T,): task k's element-wise losses summed over its labelled rows, and how
    many rows those are. scores, targets: (N, T); NaN targets are missing labels."""
    labelled = ~torch.isnan(targets)                                          # (N, T)
    filled = torch.where(labelled, targets, torch.zeros_like(targets))        # no NaN may reach a gradient
    columns = []
    for k, kind in enumerate(kinds):
        if kind == "binary":
            columns.append(F.binary_cross_entropy_with_logits(scores[:, k], filled[:, k], reduction="none"))
        else:
            columns.append((scores[:, k] - filled[:, k]) ** 2)
    per_element = torch.where(labelled, torch.stack(columns, dim=1), torch.zeros_like(scores))   # (N, T)
    return per_element.sum(dim=0), labelled.sum(dim=0).to(scores.dtype)


class MultiTaskLoss(nn.Module):
    """L = sum_k w_k L_k with static weights (default 1 each). ``forward(scores, targets)`` returns L
    and keeps ``task_losses``, the T unweighted means (detached)."""

    def __init__(self, kinds, weights=None) -> None:
        super().__init__()
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown:
            raise ValueError(f"the torch losses know the task kinds {KINDS}, got {unknown}")
        self.kinds = tuple(kinds)
        weights = torch.ones(len(self.kinds), dtype=torch.float64) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float64)
        self.register_buffer("weights", weights.clone())
        self.task_losses = None

    def combine(self, task_losses: torch.Tensor) -> torch.Tensor:
        """The total from the T task means (an affine function of them)."""
        return (self.weights.to(task_losses.dtype) * task_losses).sum()

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sums, counts = task_loss_sums(scores, targets, self.kinds)
        means = sums / counts.clamp(min=1)                                    # (T,), 0 for a task without labels
        self.task_losses = means.detach()
        return self.combine(means)


class UncertaintyWeightedLoss(MultiTaskLoss):
    """L = sum_k c_k exp(-s_k) L_k + s_k / 2 with learned log-variances s = ``log_variance`` (T,)
    (Kendall, Gal and Cipolla, 2018), as ``minimoe.UncertaintyWeightedLoss``; c_k = 1 for a binary
    task, 1/2 for a regression task."""

    def __init__(self, kinds) -> None:
        super().__init__(kinds)
        self.log_variance = nn.Parameter(torch.zeros(len(self.kinds), dtype=torch.float64))
        self.register_buffer("factors", torch.tensor([UNCERTAINTY_FACTORS[kind] for kind in self.kinds],
                                                     dtype=torch.float64))

    def combine(self, task_losses: torch.Tensor) -> torch.Tensor:
        s = self.log_variance
        return (self.factors * torch.exp(-s) * task_losses).sum() + 0.5 * s.sum()
