"""A funnel: impressions -> clicks -> conversions (and a watch time), with sample selection bias.

Every impression has categorical features (ids, embedded by a model's ``FeatureInput``) and dense
ones. Two latent scores are made from them, each the sum of a per-id effect of every categorical
column and a smooth function of the dense features:

    appeal t(x)    what makes a user click, apart from the item's quality
    quality q(x)   what makes a clicked user convert (and watch longer)

both standardised over the generated rows, and appeal made uncorrelated with quality. The funnel,
for every impression:

    pCTR = sigmoid(a0 + click_sharpness * (s q + sqrt(1 - s^2) t)),   s = ``selection_bias``
    pCVR = sigmoid(b0 + conversion_sharpness * q)
    click ~ Bernoulli(pCTR);   conversion ~ Bernoulli(pCVR), drawn for EVERY impression
    observed conversion = conversion where click = 1, NaN elsewhere

with a0 and b0 set so that the mean pCTR is ``click_rate`` and the mean pCVR ``conversion_rate``.
``selection_bias`` s is how much the quality that drives conversion also drives clicks: at s = 0
clicks are blind to it and the clicked rows are a fair sample of the impression space for the
conversion task; as s grows the clicked rows are ever more the high-quality ones, and a model
trained on them alone sees little of the rest. Real logs never show a conversion of an unclicked
impression; here ``return_truth=True`` gives it (the counterfactual conversion), with pCTR and
pCVR, so that a model can be judged on the entire space.

With ``watch_time=True`` a third column is the seconds watched after a click (NaN without one),
log-normal given x:

    log(seconds) = log(median_seconds) + watch_sharpness * (sqrt(w) q + sqrt(1 - w) t) + 0.5 eps,
    w = ``watch_quality``

so ``E[seconds | x, click]`` is exp(0.125) times the conditional median, and the expected watch
time of an impression is pCTR * E[seconds | x, click]. ``watch_quality`` w is the share of the
log-duration's variance that the item's quality makes, the rest being its appeal (0.5: equal
parts). Near 1, a reader who clicked a good article with a dull title reads it long: an unclicked
impression may hide a long read, and clicks alone rank it badly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_dtype, check_number, check_positive_int, make_rng
from ..functions import sigmoid
from ..inputs import FeatureBatch
from .mixed import offset_for_rate

WATCH_NOISE = 0.5          # sd of log(seconds) around its conditional median


@dataclass
class FunnelTruth:
    """What only a simulation knows, for every impression: ``p_click`` (N,), ``p_conversion`` (N,)
    (had it been clicked), ``conversion`` (N,) the counterfactual 0/1 conversion, and, with watch
    time, ``expected_seconds`` (N,) E[seconds | x, click]."""

    p_click: np.ndarray
    p_conversion: np.ndarray
    conversion: np.ndarray
    expected_seconds: np.ndarray | None = None

    @property
    def expected_watch(self) -> np.ndarray | None:
        """(N,) pCTR * E[seconds | x, click]: the expected watch time of showing the impression."""
        return None if self.expected_seconds is None else self.p_click * self.expected_seconds


def _latent(categorical: np.ndarray, dense: np.ndarray, cardinalities, rng) -> np.ndarray:
    """One latent score per row: per-id effects of every categorical column plus a smooth function
    of the dense features, standardised over the rows."""
    score = np.zeros(len(dense))
    for column, cardinality in enumerate(cardinalities):
        score += rng.standard_normal(cardinality)[categorical[:, column]]
    weights = rng.standard_normal(dense.shape[1]) / np.sqrt(dense.shape[1])
    linear = rng.standard_normal(dense.shape[1]) / np.sqrt(dense.shape[1])
    score += np.sin(1.5 * dense @ weights) + 0.5 * dense @ linear
    return (score - score.mean()) / score.std()


def make_funnel(n_samples: int = 50_000, cardinalities=(200, 30, 8), n_dense: int = 6, click_rate: float = 0.08,
                conversion_rate: float = 0.25, selection_bias: float = 0.9, click_sharpness: float = 3.0,
                conversion_sharpness: float = 2.0, watch_time: bool = False, median_seconds: float = 60.0,
                watch_sharpness: float = 0.8, watch_quality: float = 0.5, seed=0, return_truth: bool = False,
                dtype=np.float64):
    """X: a ``FeatureBatch`` (categorical (N, C) ids with ``cardinalities``, numeric (N, n_dense)),
    Y: (N, 2) [click, conversion observed after a click (NaN elsewhere)], or (N, 3) with
    ``watch_time`` [.., seconds after a click (NaN elsewhere)]; with ``return_truth`` also a
    ``FunnelTruth``. Ids follow a Zipf-like law (a few popular, many rare), as item ids do.

    The defaults make the funnel that sample selection bias describes: the clicked rows barely cover
    the lower-quality half of the impressions. With ``selection_bias`` 0.9 and ``click_sharpness``
    3 (8% clicks), about 3% of the clicks come from the impressions whose quality is below the
    median (2.7% to 3.0% over five seeds of 70,000 impressions), so a model trained on the clicked
    rows must extrapolate to half the impression space. A milder funnel, ``selection_bias=0.6,
    click_sharpness=1.5`` (the defaults until the funnel study's results were known), takes about
    23% of its clicks from that half: its clicked rows still cover every quality. At
    ``selection_bias=0`` the share is about 50% at either sharpness."""
    n_samples = check_positive_int("n_samples", n_samples)
    cardinalities = [check_positive_int(f"cardinalities[{i}]", c) for i, c in enumerate(cardinalities)]
    n_dense = check_positive_int("n_dense", n_dense)
    for name, rate in (("click_rate", click_rate), ("conversion_rate", conversion_rate)):
        if not 0.0 < float(rate) < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {rate}")
    for name, value in (("selection_bias", selection_bias), ("watch_quality", watch_quality)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    for name, value in (("click_sharpness", click_sharpness), ("conversion_sharpness", conversion_sharpness),
                        ("median_seconds", median_seconds), ("watch_sharpness", watch_sharpness)):
        check_number(name, value)
    dtype, rng = check_dtype(dtype), make_rng(seed)

    categorical = np.column_stack([_zipf_ids(rng, cardinality, n_samples) for cardinality in cardinalities])
    dense = rng.standard_normal((n_samples, n_dense))
    quality = _latent(categorical, dense, cardinalities, rng)                  # (N,)
    appeal = _latent(categorical, dense, cardinalities, rng)                   # (N,)
    # A few popular ids carry much of the rows, so two independent draws of effects correlate by
    # chance; taking quality out of appeal makes s = 0 an exact "clicks are blind to quality".
    appeal -= (appeal @ quality / len(quality)) * quality
    appeal /= appeal.std()
    s = float(selection_bias)
    click_logit = click_sharpness * (s * quality + np.sqrt(1.0 - s * s) * appeal)
    p_click = sigmoid(click_logit + offset_for_rate(click_logit, click_rate))
    conversion_logit = conversion_sharpness * quality
    p_conversion = sigmoid(conversion_logit + offset_for_rate(conversion_logit, conversion_rate))
    click = (rng.random(n_samples) < p_click).astype(dtype)
    conversion = (rng.random(n_samples) < p_conversion).astype(dtype)
    columns = [click, np.where(click == 1, conversion, np.nan)]
    expected_seconds = None
    if watch_time:
        w = float(watch_quality)
        log_median = np.log(median_seconds) + watch_sharpness * (np.sqrt(w) * quality + np.sqrt(1.0 - w) * appeal)
        seconds = np.exp(log_median + WATCH_NOISE * rng.standard_normal(n_samples))
        columns.append(np.where(click == 1, seconds, np.nan))
        expected_seconds = np.exp(log_median + WATCH_NOISE ** 2 / 2)
    X = FeatureBatch(categorical, dense.astype(dtype))
    Y = np.column_stack(columns).astype(dtype)
    if return_truth:
        return X, Y, FunnelTruth(p_click, p_conversion, conversion, expected_seconds)
    return X, Y


def _zipf_ids(rng, cardinality: int, n: int, exponent: float = 1.1) -> np.ndarray:
    """n ids in [0, cardinality) with P(id = i) proportional to (i + 1)^-exponent."""
    weights = (np.arange(1, cardinality + 1)) ** -exponent
    return rng.choice(cardinality, size=n, p=weights / weights.sum())


def esmm_labels(Y) -> np.ndarray:
    """(N, 2) ESMM's labels for every impression from a funnel's (N, >= 2) [click, conversion after a
    click (NaN without one), ...]: [click, click and conversion]. Clear errors for a click that is
    not 0/1, a conversion observed on a row without a click, or clicked rows without any conversion
    (the CVR tower would have nothing to learn from)."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 2:
        raise ValueError(f"Y must be (N, 2 or more): click, conversion after a click, ...; got shape {Y.shape}")
    click, conversion = Y[:, 0], Y[:, 1]
    bad = ~np.isin(click, (0.0, 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"Y[:, 0] (click) must be 0 or 1, got {click[row]} at row {row}")
    observed_without_click = (click == 0) & ~np.isnan(conversion)
    if observed_without_click.any():
        row = int(np.argmax(observed_without_click))
        raise ValueError(f"Y[:, 1] (conversion) is observed ({conversion[row]}) at row {row}, which has no click: "
                         f"a conversion exists only after a click; write NaN there")
    clicked = click == 1
    bad = clicked & ~np.isin(conversion, (0.0, 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"Y[:, 1] (conversion) must be 0 or 1 on a clicked row, got {conversion[row]} at row {row}")
    if not (conversion[clicked] == 1).any():
        raise ValueError(f"Y[:, 1] (conversion) holds no conversion among the {int(clicked.sum())} clicked rows: "
                         f"there is nothing to learn a conversion rate from")
    return np.column_stack([click, np.where(clicked, conversion, 0.0)])
