"""Evaluation metrics: AUC from ranks, log loss, mean squared error."""

from __future__ import annotations

import numpy as np

from .functions import bce_with_logits


def _check_pair(y_true, y_score, score_name: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if y_true.ndim != 1 or y_score.shape != y_true.shape:
        raise ValueError(f"y_true and {score_name} must be 1-D of equal length, got shapes "
                         f"{y_true.shape} and {y_score.shape}")
    if y_true.size == 0:
        raise ValueError("y_true must not be empty")
    if not np.isfinite(y_score).all():
        raise ValueError(f"{score_name} must be finite")
    return y_true, y_score


def _check_binary(y_true: np.ndarray) -> None:
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1, got values {np.unique(y_true)[:5]}")


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values in sorted order, and the run each position falls in.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]                     # one past each run's last index
    run_of_position = np.repeat(np.arange(starts.size), ends - starts)
    mean_rank = (starts + 1 + ends) / 2.0                      # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size)
    ranks[order] = mean_rank[run_of_position]
    return ranks


def auc(y_true, y_score) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative, ties counting one half. From ranks (Mann-Whitney U): O(N log N).

    AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P * Q), P positives, Q negatives.
    """
    y_true, y_score = _check_pair(y_true, y_score, "y_score")
    _check_binary(y_true)
    positive = y_true == 1
    n_pos = int(positive.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes in y_true, got {n_pos} positives and {n_neg} negatives")
    ranks = rank_average(np.asarray(y_score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y_true, y_prob) -> float:
    """Mean binary cross-entropy of probabilities in [0, 1]; a confident wrong answer (p = 0 for
    a positive) gives inf, honestly. Prefer ``log_loss_from_logits`` when logits are at hand."""
    y_true, y_prob = _check_pair(y_true, y_prob, "y_prob")
    _check_binary(y_true)
    if (y_prob < 0).any() or (y_prob > 1).any():
        raise ValueError("y_prob must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.where(y_true == 1, np.log(y_prob), np.log1p(-y_prob))))


def log_loss_from_logits(y_true, logits) -> float:
    """Mean binary cross-entropy computed from logits, exact for any finite logit."""
    y_true, logits = _check_pair(y_true, logits, "logits")
    _check_binary(y_true)
    return float(np.mean(bce_with_logits(logits.astype(np.float64), y_true)))


def mse(y_true, y_pred) -> float:
    """Mean squared error."""
    y_true, y_pred = _check_pair(y_true, y_pred, "y_pred")
    return float(np.mean((y_pred.astype(np.float64) - y_true) ** 2))
