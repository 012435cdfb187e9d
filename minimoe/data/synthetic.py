"""The synthetic two-task regression benchmark of the MMoE paper (Ma et al., KDD 2018, section 3.2).

Task relatedness is set by one knob, the cosine ``correlation`` p between the two tasks' weight
vectors:

    u1, u2 orthogonal unit vectors in R^D
    w1 = c u1,   w2 = c (p u1 + sqrt(1 - p^2) u2)
    x ~ N(0, I_D)
    y_k = w_k . x + sum_{i=1..m} sin(alpha_i w_k . x + beta_i) + eps_k,   eps_k ~ N(0, sigma^2)

The paper calls alpha and beta "given parameters" and leaves them, c and m unstated. minimoe's
defaults: c = 1 (``scale``), m = 10 (``n_sines``), sigma = 0.1 (the paper's noise variance 0.01),
and alpha_i, beta_i drawn from N(0, 1) by their own generator, ``shape_seed`` (default 0), not by
``seed``. So the shape of the sinusoids is a fixed constant of the benchmark, shared by both tasks
and by every data set, while ``seed`` draws the directions u1, u2, the inputs and the noise. (An
earlier version drew alpha and beta from ``seed``: the label variance then ranged from 0.4 to 36
across seeds, and the label correlation at p = 0.5 from 0.1 to 0.5, swamping every model
difference with data-set difficulty.)

Tasks of different difficulty: ``scale`` and ``noise_std`` also take one value per task, (c_1, c_2)
and (sigma_1, sigma_2). A larger c_k makes task k's sinusoids faster (alpha_i c_k u . x) and its
labels larger; a larger sigma_k makes it noisier. One number for both tasks draws exactly what it
always drew.

Measured Pearson correlation of (y1, y2) with the defaults (50,000 rows; it varies by less than 0.01
across ``seed``, since x is isotropic): p = 1: 0.992, 0.9: 0.882, 0.5: 0.470, 0: 0.001,
-0.5: -0.445. Label variance about 1.3 per task.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..checks import check_correlation, check_dtype, check_number, check_positive_int, make_rng


def orthogonal_unit_vectors(n_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two random orthogonal unit vectors of R^D (Gram-Schmidt on two Gaussian draws)."""
    a, b = rng.standard_normal((2, n_features))
    u1 = a / np.linalg.norm(a)
    b = b - (b @ u1) * u1
    return u1, b / np.linalg.norm(b)


def make_synthetic(n_samples: int = 10_000, n_features: int = 100, correlation: float = 0.5,
                   seed=0, scale: float = 1.0, n_sines: int = 10, noise_std: float = 0.1,
                   shape_seed=0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """X: (n_samples, n_features) and Y: (n_samples, 2) from the paper's generator.

    u1, u2, x and the noise come from ``seed``; alpha and beta from ``shape_seed``. One call is one
    data set: split its rows for training and testing (both must share u1, u2). ``scale`` (c) and
    ``noise_std`` (sigma) are one number for both tasks or a pair, one per task.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    n_features = check_positive_int("n_features", n_features)
    if n_features < 2:
        raise ValueError(f"n_features must be >= 2 (two orthogonal directions), got {n_features}")
    correlation = check_correlation("correlation", correlation)
    n_sines = check_positive_int("n_sines", n_sines)
    scale = per_task_number("scale", scale)
    noise_std = per_task_number("noise_std", noise_std, allow_zero=True)
    dtype, rng = check_dtype(dtype), make_rng(seed)
    X, signal = related_signals(n_samples, n_features, correlation, rng, scale, n_sines, shape_seed)
    Y = signal + noise_std * rng.standard_normal((n_samples, 2))
    return X.astype(dtype), Y.astype(dtype)


def per_task_number(name: str, value, allow_zero: bool = False):
    """A checked number for both tasks (a float), or a pair of them, one per task (a (2,) array)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or one per task (2), got {len(value)} values")
        return np.array([check_number(f"{name}[{k}]", v, allow_zero) for k, v in enumerate(value)])
    return check_number(name, value, allow_zero)


def related_signals(n_samples: int, n_features: int, correlation: float, rng: np.random.Generator,
                    scale: float = 1.0, n_sines: int = 10, shape_seed=0) -> tuple[np.ndarray, np.ndarray]:
    """The generator's noise-free part: X: (N, D) ~ N(0, I) and (N, 2) signals
    w_k . x + sum_i sin(alpha_i w_k . x + beta_i), with cos(w1, w2) = ``correlation`` and |w_k| =
    ``scale`` (one number, or one per task).

    Arguments are taken as checked; ``make_synthetic`` and ``make_mixed_tasks`` check them.
    """
    alpha, beta = make_rng(shape_seed, "shape_seed").standard_normal((2, n_sines))          # (m,), (m,)
    u1, u2 = orthogonal_unit_vectors(n_features, rng)
    directions = np.stack([u1, correlation * u1 + np.sqrt(1.0 - correlation ** 2) * u2])  # (2, D)
    w = np.reshape(scale, (-1, 1)) * directions                                           # (2, D)
    X = rng.standard_normal((n_samples, n_features))                                      # (N, D)
    projection = X @ w.T                                                                  # (N, 2): w_k . x
    waves = np.sin(projection[:, :, None] * alpha + beta).sum(axis=2)                     # (N, 2)
    return X, projection + waves


def train_test_split(X, Y, test_size, seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle rows by ``seed`` and split; ``test_size`` is a row count or a fraction in (0, 1)."""
    X, Y = np.asarray(X), np.asarray(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}")
    n = X.shape[0]
    n_test = int(round(test_size * n)) if isinstance(test_size, float) and 0 < test_size < 1 else test_size
    if isinstance(n_test, bool) or not isinstance(n_test, numbers.Integral) or not 0 < n_test < n:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a row count in [1, {n - 1}], got {test_size!r}")
    order = make_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], Y[train], Y[test]
