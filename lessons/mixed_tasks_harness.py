"""The harness of lessons 07 and 08: train one small MMoE on a click and a duration in seconds with
different losses and targets, and score every variant the same way.

Lesson 07 uses it for the scale problem (no weights, a static weight, a log1p target), lesson 08 for
learned weights (uncertainty weighting, GradNorm). It is bookkeeping around the library (``mm.fit``,
``mm.task_gradient_norms``, ``mm.TargetTransform``), kept here so that both lessons train and score
exactly alike:

    data = mixed_data()                           # the rows of both lessons, split
    run = train(data, "unweighted", seed=0)       # one MMoE, recording per epoch as it trains
    evaluate_run(data, run)                       # its test metrics
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import minimoe as mm
from minimoe.metrics import auc, mse, rank_average

N_TRAIN, N_VAL, N_TEST, D = 12_000, 4_000, 4_000, 20
TASKS, TASK_NAMES = ("binary", "regression"), ("click", "duration")
ARCH = dict(n_experts=4, expert_units=(16,), tower_units=(16,))     # E = 4 experts of H = 16 units
EPOCHS, BATCH, LR = 10, 256, 1e-2
NORM_ROWS = 2_000        # training rows on which the per-task gradient norms are measured
TAIL_SECONDS = 10_000    # test durations at or above this are left out of the RMSE in seconds
MODEL_PARTS = ("levels.0.experts.", "levels.0.gates.task0.", "levels.0.gates.task1.", "towers.0.", "towers.1.")
STEPS_PER_EPOCH = -(-N_TRAIN // BATCH)


@dataclass(frozen=True)
class MixedData:
    """The rows of lessons 07 and 08: Y columns are (click 0/1, duration in s)."""

    X_train: np.ndarray           # (N_TRAIN, D)
    Y_train: np.ndarray           # (N_TRAIN, 2)
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    truth_test: np.ndarray        # (N_TEST, 2): the true P(click | x) and E[duration | x], synthetic only
    typical: np.ndarray           # (N_TEST,) bool: test rows with a duration below TAIL_SECONDS


def mixed_data(correlation: float = 0.5, seed: int = 0) -> MixedData:
    """20,000 rows of ``mm.data.make_mixed_tasks`` at D = 20, split 12,000 / 4,000 / 4,000."""
    X, Y, truth = mm.data.make_mixed_tasks(N_TRAIN + N_VAL + N_TEST, D, correlation=correlation, seed=seed,
                                           return_truth=True)
    # Split the truth with the labels: columns click, duration, P(click | x), E[duration | x].
    labels_and_truth = np.column_stack([Y, truth["click_probability"], truth["expected_duration"]])  # (N, 4)
    X_train, X_rest, Z_train, Z_rest = mm.data.train_test_split(X, labels_and_truth, N_VAL + N_TEST, seed=0)
    X_val, X_test, Z_val, Z_test = mm.data.train_test_split(X_rest, Z_rest, N_TEST, seed=1)
    return MixedData(X_train, Z_train[:, :2], X_val, Z_val[:, :2], X_test, Z_test[:, :2], Z_test[:, 2:],
                     Z_test[:, 1] < TAIL_SECONDS)


@dataclass
class Run:
    """One trained model and what was recorded while it trained (init + one entry per epoch)."""

    name: str
    seed: int
    model: mm.MMoE
    columns: list                 # which columns of Y (0 click, 1 duration) the model predicts
    loss: object                  # MultiTaskLoss, UncertaintyWeightedLoss or GradNormLoss
    transform: object             # the TargetTransform of the training targets, or None (raw seconds)
    norms: np.ndarray             # (EPOCHS + 1, T): each task's weighted gradient norm on the shared experts
    train_loss: np.ndarray        # (EPOCHS, T): each task's mean unweighted training loss
    log_variance: np.ndarray      # (EPOCHS + 1, T): the learned s_k (empty unless uncertainty weighting)
    weights: np.ndarray           # (EPOCHS + 1, T): the task weights w_k
    speeds: np.ndarray            # (EPOCHS, len(MODEL_PARTS)): how far each part of the model moved
    fit_seconds: float            # time spent in mm.fit (without the norm measurements)


def part_speeds(model, before) -> np.ndarray:
    """(len(MODEL_PARTS),) RMS change of each part's parameters since ``before`` (a copy of
    model.params), in units of LR * STEPS_PER_EPOCH: about the most Adam moves a parameter in an epoch."""
    params = model.params
    speeds = []
    for prefix in MODEL_PARTS:
        changes = [(value - before[name]).ravel() for name, value in params.items() if name.startswith(prefix)]
        speeds.append(np.sqrt(np.mean(np.concatenate(changes) ** 2)) / (LR * STEPS_PER_EPOCH) if changes else np.nan)
    return np.array(speeds)


def train(data: MixedData, name: str, seed: int, columns=(0, 1), loss=None, transform=None,
          restart_optimizer_at=None) -> Run:
    """An MMoE (``ARCH``) trained on the columns ``columns`` of the training rows for EPOCHS epochs,
    one ``mm.fit`` call per epoch with one Adam throughout (its moments carry over, so this is one
    continuous run); ``restart_optimizer_at=e`` gives it a fresh Adam before epoch e (a diagnostic).
    ``loss`` defaults to the unweighted MultiTaskLoss, ``transform`` to none (raw seconds)."""
    columns = list(columns)
    tasks, names = tuple(TASKS[c] for c in columns), tuple(TASK_NAMES[c] for c in columns)
    targets = data.Y_train[:, columns]
    targets = targets if transform is None else transform.forward(targets)                      # (N, T)
    model = mm.MMoE(D, **ARCH, tasks=tasks, task_names=names, seed=seed)
    loss = loss if loss is not None else mm.MultiTaskLoss(tasks, task_names=names)
    learned = isinstance(loss, mm.UncertaintyWeightedLoss)
    optimizer = mm.Adam(lr=LR)
    probe = (data.X_train[:NORM_ROWS], targets[:NORM_ROWS])
    norms, losses, speeds, fit_seconds = [mm.task_gradient_norms(model, *probe, loss=loss)], [], [], 0.0
    log_variance = [loss.params["log_variance"].copy()] if learned else []
    weights = [np.array(loss.weights, dtype=float)]
    for epoch in range(EPOCHS):
        if epoch == restart_optimizer_at:
            optimizer = mm.Adam(lr=LR)                   # forget the moment estimates
        before, started = {key: value.copy() for key, value in model.params.items()}, time.perf_counter()
        history = mm.fit(model, data.X_train, targets, epochs=1, batch_size=BATCH, optimizer=optimizer, loss=loss,
                         seed=1000 * seed + epoch, progress=False)
        fit_seconds += time.perf_counter() - started
        speeds.append(part_speeds(model, before))
        losses.append(history.train_loss[0])
        norms.append(mm.task_gradient_norms(model, *probe, loss=loss))
        if learned:
            log_variance.append(loss.params["log_variance"].copy())
        weights.append(np.array(loss.weights, dtype=float))
    return Run(name, seed, model, columns, loss, transform, np.array(norms), np.array(losses),
               np.array(log_variance), np.array(weights), np.array(speeds), fit_seconds)


def norm_ratios(runs) -> np.ndarray:
    """(len(runs), EPOCHS + 1) duration / click gradient-norm ratio. NaN where a task's gradient on
    the experts is exactly 0 (every ReLU of its tower off on every probe row: a silent tower)."""
    norms = np.array([run.norms for run in runs])                    # (R, EPOCHS + 1, T)
    both = (norms > 0).all(axis=2)
    return np.where(both, norms[..., 1] / np.where(both, norms[..., 0], 1.0), np.nan)


def spearman(a, b) -> float:
    """Spearman's rank correlation: Pearson's correlation of the two rank vectors (ties share a rank)."""
    return float(np.corrcoef(rank_average(a), rank_average(b))[0, 1])


def duration_in_seconds(data: MixedData, run: Run, scores: np.ndarray) -> np.ndarray:
    """The duration column of ``scores`` (N, T) in seconds; a log1p model's outputs come back with the
    mean correction expm1(z + v / 2), its residual variance v estimated on the validation rows."""
    k = run.columns.index(1)
    if run.transform is None:
        return scores[:, k]
    variance = run.transform.residual_variance(run.model.predict_scores(data.X_val), data.Y_val[:, run.columns])
    return run.transform.inverse(scores, residual_variance=variance)[:, k]


def evaluate_run(data: MixedData, run: Run) -> dict:
    """Test metrics of one run: ``click_auc``; for the duration ``rmse_s`` (seconds, typical rows),
    ``log_mse`` (MSE of log1p) and ``spearman`` (the order of the predictions)."""
    scores = run.model.predict_scores(data.X_test)                   # (N_TEST, T)
    metrics = {}
    if 0 in run.columns:
        metrics["click_auc"] = auc(data.Y_test[:, 0], scores[:, run.columns.index(0)])
    if 1 in run.columns:
        k, observed = run.columns.index(1), data.Y_test[:, 1]
        seconds = duration_in_seconds(data, run, scores)
        # a log1p model's output is on the log scale already; a raw prediction below 0 s counts as 0 s
        log_scale = scores[:, k] if run.transform is not None else np.log1p(np.maximum(scores[:, k], 0.0))
        metrics["rmse_s"] = np.sqrt(mse(observed[data.typical], seconds[data.typical]))
        metrics["log_mse"] = mse(np.log1p(observed), log_scale)
        metrics["spearman"] = spearman(observed, scores[:, k])
    return metrics


def mean_metrics(data: MixedData, runs) -> dict:
    """{metric: its mean over the runs (seeds) of one variant}."""
    values = [evaluate_run(data, run) for run in runs]
    return {key: float(np.mean([m[key] for m in values])) for key in values[0]}
