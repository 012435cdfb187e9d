"""Per-task target transforms: train a regression head on log1p(duration), predict in seconds.

A heavy-tailed target (a watch duration) gives a squared error dominated by its few longest rows
and a loss thousands of times larger than a click's cross-entropy. Training on z = log1p(y) tames
both; predictions come back as y = expm1(z).

The back-transform has a catch. If the model predicts z_hat = E[z | x] and the residual
z - z_hat is roughly normal with variance v, then E[1 + y | x] = exp(z_hat + v / 2), not
exp(z_hat): plain ``expm1`` gives the conditional *median* (for a log-normal target), which is lower
than the mean. ``inverse(values, residual_variance=v)`` applies that correction; estimate v as the
mean squared residual of z on held-out rows (``residual_variance`` below).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRANSFORMS = ("identity", "log1p")


class TargetTransform:
    """One transform per task column: ``"identity"`` or ``"log1p"``.

    forward(Y): (N, T) -> (N, T) targets to train on (a new array; Y is never modified);
    inverse(values): (N, T) model outputs on the transformed scale -> the original scale.
    """

    def __init__(self, transforms: Sequence[str]) -> None:
        if isinstance(transforms, str) or not isinstance(transforms, Sequence) or not transforms:
            raise TypeError(f"transforms must be a non-empty sequence, one of {TRANSFORMS} per task, "
                            f"got {transforms!r}")
        for k, name in enumerate(transforms):
            if name not in TRANSFORMS:
                raise ValueError(f"transforms[{k}] must be one of {TRANSFORMS}, got {name!r}")
        self.transforms = tuple(transforms)
        self.log1p = np.array([name == "log1p" for name in self.transforms])   # (T,)

    def _check(self, name: str, values) -> np.ndarray:
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != len(self.transforms):
            raise ValueError(f"{name} must have shape (N, {len(self.transforms)}), one column per task, "
                             f"got {values.shape}")
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float64)
        return values

    def forward(self, Y) -> np.ndarray:
        """Y on the original scale -> the training targets (log1p columns need Y > -1)."""
        Y = self._check("Y", Y)
        columns = Y[:, self.log1p]
        if not (columns > -1).all():
            k = int(np.flatnonzero(self.log1p)[np.argmin(columns.min(axis=0))])
            raise ValueError(f"Y[:, {k}] must be > -1 for log1p (durations are >= 0), "
                             f"got a minimum of {Y[:, k].min()}")
        out = Y.copy()
        out[:, self.log1p] = np.log1p(columns)
        return out

    def inverse(self, values, residual_variance=None) -> np.ndarray:
        """Model outputs -> the original scale: expm1(z), or expm1(z + v / 2) for the conditional
        mean when ``residual_variance`` v is given (a number or one per task; identity columns
        ignore it)."""
        values = self._check("values", values)
        out = values.copy()
        z = values[:, self.log1p]
        if residual_variance is not None:
            variance = np.asarray(residual_variance, dtype=np.float64)
            if variance.ndim == 0:
                variance = np.full(len(self.transforms), float(variance))
            if variance.shape != (len(self.transforms),) or not (np.isfinite(variance) & (variance >= 0)).all():
                raise ValueError(f"residual_variance must be a number >= 0 or {len(self.transforms)} of them, "
                                 f"got {residual_variance!r}")
            z = z + 0.5 * variance[self.log1p]
        out[:, self.log1p] = np.expm1(z)
        return out

    def residual_variance(self, values, Y) -> np.ndarray:
        """(T,) mean squared residual on the transformed scale, forward(Y) - values: the v of
        ``inverse`` (estimate it on rows the model was not trained on). Only the log1p columns'
        entries mean anything; ``inverse`` ignores the others."""
        values, targets = self._check("values", values), self.forward(Y)
        if values.shape != targets.shape:
            raise ValueError(f"values and Y must have the same shape, got {values.shape} and {targets.shape}")
        return ((targets - values) ** 2).mean(axis=0)

    def __repr__(self) -> str:
        return f"TargetTransform({self.transforms!r})"
