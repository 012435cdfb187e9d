"""A mixed-task benchmark: a binary click and a heavy-tailed watch duration from related signals.

The two tasks of a feed: did the user click (binary), and how long did they stay (a positive,
heavy-tailed duration in seconds). Their relatedness is the knob of the paper's generator
(``related_signals``): two noise-free signals s1, s2 whose weight vectors have cosine
``correlation``, standardised over the generated rows. Then, for every row,

    P(click) = sigmoid(click_sharpness * s1 + b),      b set so that the mean P(click) = click_rate
    log(duration) = log(duration_median) + duration_signal * s2 + duration_noise * eps,  eps ~ N(0, 1)

so the duration is log-normal given x: its median is exp(log(duration_median) + duration_signal * s2)
and its mean exp(duration_noise^2 / 2) times that. With the defaults the durations' standard
deviation is in the hundreds of seconds while a click's cross-entropy is below 1: the loss scales
differ by about five orders of magnitude, which is the point of the benchmark.

Both tasks are observed on every row (parallel tasks, not a click-then-watch funnel).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_correlation, check_dtype, check_number, check_positive_int, make_rng
from ..layers import sigmoid
from .synthetic import related_signals


def offset_for_rate(logits: np.ndarray, rate: float) -> float:
    """The b with mean(sigmoid(logits + b)) = rate, by bisection (the mean is increasing in b)."""
    low, high = -50.0, 50.0
    for _ in range(100):
        middle = 0.5 * (low + high)
        if sigmoid(logits + middle).mean() < rate:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def make_mixed_tasks(n_samples: int = 10_000, n_features: int = 20, correlation: float = 0.5,
                     click_rate: float = 0.2, click_sharpness: float = 2.0, duration_median: float = 60.0,
                     duration_signal: float = 0.8, duration_noise: float = 0.6, seed=0, shape_seed=0,
                     dtype=np.float64, return_truth: bool = False):
    """X: (N, D) and Y: (N, 2) with Y[:, 0] a 0/1 click and Y[:, 1] a duration in seconds (> 0).

    ``return_truth=True`` also returns a dict of what generated each row: ``click_probability``
    (N,) and ``expected_duration`` (N,), the mean duration given x. Ranking experiments use them as
    the true utility. One call is one data set: split its rows for training and testing.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    n_features = check_positive_int("n_features", n_features)
    if n_features < 2:
        raise ValueError(f"n_features must be >= 2 (two orthogonal directions), got {n_features}")
    correlation = check_correlation("correlation", correlation)
    click_rate = float(click_rate)
    if not 0.0 < click_rate < 1.0:
        raise ValueError(f"click_rate must lie in (0, 1), got {click_rate}")
    click_sharpness = check_number("click_sharpness", click_sharpness, allow_zero=True)
    duration_median = check_number("duration_median", duration_median)
    duration_signal = check_number("duration_signal", duration_signal, allow_zero=True)
    duration_noise = check_number("duration_noise", duration_noise, allow_zero=True)
    dtype, rng = check_dtype(dtype), make_rng(seed)

    X, signal = related_signals(n_samples, n_features, correlation, rng, shape_seed=shape_seed)  # (N, D), (N, 2)
    signal = (signal - signal.mean(axis=0)) / signal.std(axis=0)   # standardised, so the knobs read as stated
    click_logit = click_sharpness * signal[:, 0]                                     # (N,)
    click_probability = sigmoid(click_logit + offset_for_rate(click_logit, click_rate))
    clicks = (rng.random(n_samples) < click_probability).astype(np.float64)
    log_median = np.log(duration_median) + duration_signal * signal[:, 1]             # (N,)
    duration = np.exp(log_median + duration_noise * rng.standard_normal(n_samples))
    Y = np.stack([clicks, duration], axis=1)                                          # (N, 2)
    if not return_truth:
        return X.astype(dtype), Y.astype(dtype)
    truth = {"click_probability": click_probability,
             "expected_duration": np.exp(log_median + 0.5 * duration_noise ** 2)}
    return X.astype(dtype), Y.astype(dtype), truth
