"""Funnels: ESMM (Ma et al., SIGIR 2018) against the CVR models it replaces, judged on the entire
impression space, and the watch time of items nobody clicked.

Two studies, as plain data like ``experiments.py``; a *run* is one freshly generated funnel
(``make_funnel``) on which every compared model is trained, so models are compared pair-wise per run.

**CVR** (``cvr_study``). On every run, with the same backbone (an embedding input layer, a
Shared-Bottom, towers) and the same training budget (Adam, early stopping on a validation split
of impressions, using only the labels a real log would hold there):

    ESMM             the paper's: towers CTR and CVR on the shared input layer (embeddings) alone,
                     trained on every impression with (click, click and conversion)
    ESMM-SB          the same with a shared bottom of ``bottom_units`` between the input and the towers
    ESMM-NS          the same with nothing shared: each tower has its own input layer (the paper's ESMM-NS)
    ESMM-MMoE        the same on an MMoE backbone
    clicked-only     a single-task CVR model trained on the clicked rows alone: the baseline the
                     paper beats (its "BASE")
    all-impressions  the same model trained on every impression, non-clicks as negatives ("AMAN")
    two-task         a two-task Shared-Bottom (click; conversion, missing (NaN) where there is no
                     click): ESMM's shared representation without its entire-space loss

A single-task CTR model (same backbone, every impression) gives the pCTR that the two single-task
CVR models are multiplied by for their CTCVR, as in the paper. On the test split every model is
scored on the *entire space*, which only a simulation allows: the AUC of its pCVR against the
counterfactual conversion of every impression, the Spearman correlation of its pCVR with the true
pCVR, and the CTCVR AUC; beside them the CVR AUC on the clicked rows only, the one a real log
allows.

**Watch time** (``watch_study``). With a watch time observed only after a click, rank impressions
by the expected watch time pCTR x E[seconds | click] (``FunnelTruth.expected_watch``):

    zero-filled        a regression on every impression of the seconds, 0 where there is no click
                       (its least-squares target IS the expected watch time); score: its prediction
    zero-filled x pCTR a two-task model (click; log1p seconds, 0 where there is no click), scored by
                       pCTR x its duration, the "zero" the article calls clearly wrong
    clicked-rows x pCTR  a two-task model (click; log seconds, missing where there is no click),
                       scored by pCTR x exp(its log-duration): the power product with alpha = 1/2
    ESMM-style         ``WatchESMM``: towers a (CTR logit) and z (log-duration); the head gives
                       log w = log sigmoid(a) + z, the log of the expected watch time, trained on
                       every impression by a Poisson loss on the zero-filled seconds (its minimiser
                       is the mean); the duration tower never sees a duration on its own

scored per test "user" (fixed-size random groups of impressions) by NDCG@10 of the true expected
watch time, and by the Spearman correlation with it over all test impressions.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .. import fusion
from ..checks import check_number, check_positive_int, make_rng
from ..data.funnel import esmm_labels, make_funnel
from ..functions import sigmoid
from ..heads import softplus
from ..inputs import FeatureInput
from ..losses import MultiTaskLoss
from ..metrics import auc, rank_average
from ..models import ESMM, HeadedModel, SharedBottom
from ..module import Module
from ..optim import Adam
from ..tasks import BinaryTask, Task
from ..train import fit
from .experiments import mean_ci95
from .parallel import map_runs

CVR_MODELS = ("ESMM", "ESMM-SB", "ESMM-NS", "ESMM-MMoE", "clicked-only", "all-impressions", "two-task")
ESMM_MODELS = ("ESMM", "ESMM-SB", "ESMM-NS", "ESMM-MMoE")
WATCH_MODELS = ("zero-filled", "zero-filled x pCTR", "clicked-rows x pCTR", "ESMM-style")
WATCH_ROWS = WATCH_MODELS + ("clicked-rows, alpha on validation", "pCTR alone", "duration alone")
KNOBS = ("selection_bias", "click_sharpness", "click_rate")     # the funnel knobs a sweep may vary
SELECTIONS = {   # early stopping of the CVR models, by settings.selection: what each model is stopped on
    "cvr": "every CVR model on the log loss of its pCVR on the clicked validation rows (the one CVR criterion "
           "a log allows)",
    "own": "ESMM models and the two-task model on their own training loss on the validation split, the "
           "single-task models on the clicked rows' pCVR log loss",
    "ctcvr": "ESMM models on their CTCVR validation loss alone (fit's monitor='ctcvr'), the two-task model on its "
             "own loss, the single-task models on the clicked rows' pCVR log loss"}


# ------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class FunnelSettings:
    """Everything a run depends on besides its cell (knob values) and run number.

    Data: ``n_train`` + ``n_validation`` + ``n_test`` impressions of ``make_funnel`` with the
    knobs below (its defaults: selection bias 0.9, click sharpness 3, 8% clicks, a funnel whose
    clicked rows barely cover the lower-quality half of the impressions). Models: ``FeatureInput``
    with embeddings of ``embedding_dim``, a Shared-Bottom of ``bottom_units`` (MMoE: ``n_experts``
    of ``expert_units``), towers of ``tower_units``. Training: Adam at ``lr``, batches of
    ``batch_size``, at most ``max_epochs`` over the impressions with early stopping (``patience``
    epochs) on the validation split. A model trained on the clicked rows alone gets the same budget
    in optimizer steps: its epochs and patience are scaled by impressions / clicked rows.
    """

    n_train: int = 40_000
    n_validation: int = 10_000
    n_test: int = 20_000
    cardinalities: tuple = (200, 30, 8)
    n_dense: int = 6
    click_rate: float = 0.08
    conversion_rate: float = 0.25
    selection_bias: float = 0.9
    click_sharpness: float = 3.0
    conversion_sharpness: float = 2.0
    watch_sharpness: float = 0.8
    watch_quality: float = 0.5
    embedding_dim: int = 8
    bottom_units: tuple = (64,)
    n_experts: int = 4
    expert_units: tuple = (32,)
    tower_units: tuple = (16,)
    lr: float = 3e-3
    ctcvr_weight: float = 1.0            # ESMM's loss: BCE(click) + ctcvr_weight * BCE(click and conversion)
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 5
    fixed_epochs: int | None = None      # train exactly this many epochs, no early stopping (a probe's protocol)
    selection: str = "cvr"               # early stopping of the CVR models: "cvr", "own" or "ctcvr" (see run_cvr)
    curves: bool = True                  # record every CVR model's test AUC after each epoch (learning curves)
    group_size: int = 50                 # impressions per test "user" in the watch-time study
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_validation", "n_test", "n_dense", "embedding_dim", "n_experts", "batch_size",
                     "max_epochs", "patience", "group_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("click_rate", "conversion_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)}")
        for name in ("selection_bias", "watch_quality"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        check_number("click_sharpness", self.click_sharpness)
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {tuple(SELECTIONS)}, got {self.selection!r}")
        if self.fixed_epochs is not None:
            check_positive_int("fixed_epochs", self.fixed_epochs)
        if not (self.ctcvr_weight > 0 and math.isfinite(self.ctcvr_weight)):
            raise ValueError(f"ctcvr_weight must be a positive number, got {self.ctcvr_weight}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    def funnel_options(self, cell: dict, watch_time: bool = False) -> dict:
        """``make_funnel``'s arguments: the settings' knobs, then the cell's."""
        options = dict(cardinalities=self.cardinalities, n_dense=self.n_dense, click_rate=self.click_rate,
                       conversion_rate=self.conversion_rate, selection_bias=self.selection_bias,
                       click_sharpness=self.click_sharpness, conversion_sharpness=self.conversion_sharpness)
        if watch_time:
            options.update(watch_time=True, watch_sharpness=self.watch_sharpness, watch_quality=self.watch_quality)
        options.update(cell)
        return options


QUICK = FunnelSettings(n_train=20_000, n_validation=5_000, n_test=10_000, curves=False)   # minimoe funnel
FULL = FunnelSettings()                                                                     # minimoe funnel --full


def with_overrides(settings: FunnelSettings, **overrides) -> FunnelSettings:
    """A copy of ``settings`` with the given fields replaced (None values ignored)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


# ------------------------------------------------------------------------------------ metrics

def spearman(a, b) -> float:
    """Spearman's rank correlation of two 1-D arrays (ties share their mean rank)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"a and b must be 1-D of equal length >= 2, got shapes {a.shape} and {b.shape}")
    return float(np.corrcoef(rank_average(a), rank_average(b))[0, 1])


# ------------------------------------------------------------------------- the watch-time model

class PoissonTask(Task):
    """A non-negative target (seconds watched, 0 without a click); the score is the log of its
    predicted mean. Loss: the Poisson deviance up to terms of y alone, exp(s) - y s, whose minimiser
    over s is log E[y | x], zeros included; d/ds = exp(s) - y. Used on real-valued y as a
    quasi-likelihood: only the mean matters."""

    kind = "poisson"
    uncertainty_factor = 1.0

    def loss(self, scores, labels):
        return np.exp(scores) - labels * scores

    def loss_gradient(self, scores, labels):
        return np.exp(scores) - labels

    def link(self, scores):
        return np.exp(scores)

    def metrics(self, labels, scores):
        return {"poisson_loss": float(np.mean(np.exp(scores) - labels * scores))}

    def check_labels(self, name, labels):
        bad = ~np.isnan(labels) & (labels < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name} is a Poisson task, labels must be >= 0; got {labels[row]} at row {row}")


class WatchHead(Module):
    """(N, 2) tower scores (a, z): the CTR logit and the log-duration after a click -> (N, 2) scores
    (a, log w) with w = sigmoid(a) exp(z) the expected watch time of the impression:

        log w = log sigmoid(a) + z = -softplus(-a) + z,   d log w / da = sigmoid(-a),   d log w / dz = 1
    """

    reads = ((0,), (0, 1))          # output 0 reads a; output 1, log w, reads a and z

    def forward(self, scores: np.ndarray) -> np.ndarray:
        self.a = scores[:, 0]
        return np.stack([self.a, -softplus(-self.a) + scores[:, 1]], axis=1)

    def backward(self, dscores: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return np.stack([dscores[:, 0] + dscores[:, 1] * sigmoid(-self.a), dscores[:, 1]], axis=1)


class WatchESMM(HeadedModel):
    """ESMM's idea for a watch time: a CTR tower (logit a) and a duration tower (z, the log of
    E[seconds | click] in the target's unit) on a shared Shared-Bottom backbone; the ``WatchHead``
    outputs (a, log w), trained on every impression with labels (click, seconds or 0 without a
    click) by cross-entropy and ``PoissonTask``'s loss. ``predict`` gives (pCTR, expected watch
    time); ``predict_duration`` E[seconds | click] for any impression.

    Built here from the library's public pieces (``HeadedModel`` with a ``SharedBottom`` as its
    ``base``) for the study; it is not in ``models.MODELS`` and is not saved or loaded.
    """

    def __init__(self, n_features, bottom_units=(64,), tower_units=(16,), seed=0, dtype=np.float64, inputs=None):
        tasks = (BinaryTask("ctr"), PoissonTask("watch"))
        rng = make_rng(seed)
        base = SharedBottom(n_features, bottom_units=bottom_units, tower_units=tower_units,
                            tasks=("binary", "regression"), task_names=("ctr", "log_duration"), seed=rng,
                            dtype=dtype, inputs=inputs)
        super().__init__(dict(locals(), n_features=base.n_features, task_names=None, init="uniform", seed=rng,
                              inputs=None))
        self.base = base
        self.head = WatchHead()

    def predict_duration(self, X) -> np.ndarray:
        """(N,) exp(z): E[seconds | click] in the target's unit, for every impression."""
        return np.exp(self.base_scores(X)[:, 1])


# ----------------------------------------------------------------------------------- the runs

@dataclass(frozen=True)
class RunSpec:
    study: str                  # "cvr" or "watch"
    run: int
    cell: tuple = ()            # ((knob, value), ...) overriding the settings' funnel knobs
    models: tuple = CVR_MODELS
    n_train: int | None = None  # the size sweep: this many training impressions (a quarter as many for validation)


@dataclass
class RunResult:
    study: str
    run: int
    cell: dict
    metrics: dict               # {model: {metric: value}}
    seconds: float
    clicked_train: int = 0      # clicked rows in the training split
    extra: dict = field(default_factory=dict)


def _seeds(settings: FunnelSettings, run: int):
    """The data seed depends on (seed, run) alone: every model of a run, and every cell of a sweep,
    sees the same ids, features and random draws (a sweep's cells differ only by their knob)."""
    return np.random.SeedSequence([settings.seed, run]), (lambda k: np.random.SeedSequence([settings.seed, run, 1, k]))


def _split(settings: FunnelSettings):
    a, b = settings.n_train, settings.n_train + settings.n_validation
    return slice(0, a), slice(a, b), slice(b, b + settings.n_test)


def _inputs(settings: FunnelSettings, rng) -> FeatureInput:
    return FeatureInput(settings.cardinalities, n_numeric=settings.n_dense, embedding_dims=settings.embedding_dim,
                        seed=rng)


def build_model(name: str, settings: FunnelSettings, seed):
    """The model ``name`` (a CVR_MODELS or WATCH_MODELS entry, or "ctr") at the settings' sizes."""
    rng = np.random.default_rng(seed)
    inputs = _inputs(settings, rng)
    sizes = dict(tower_units=settings.tower_units, inputs=inputs, seed=rng)
    if name == "ESMM":
        return ESMM(None, bottom_units=(), **sizes)                              # the paper's: only inputs shared
    if name == "ESMM-SB":
        return ESMM(None, bottom_units=settings.bottom_units, **sizes)
    if name == "ESMM-NS":
        return ESMM(None, backbone="none", **sizes)
    if name == "ESMM-MMoE":
        return ESMM(None, backbone="mmoe", n_experts=settings.n_experts, expert_units=settings.expert_units, **sizes)
    if name == "ESMM-style":
        return WatchESMM(None, bottom_units=settings.bottom_units, tower_units=settings.tower_units, seed=rng,
                         inputs=inputs)
    tasks = {"clicked-only": ("binary",), "all-impressions": ("binary",), "ctr": ("binary",),
             "two-task": ("binary", "binary"), "zero-filled": ("regression",),
             "zero-filled x pCTR": ("binary", "regression"), "clicked-rows x pCTR": ("binary", "regression")}
    if name not in tasks:
        raise ValueError(f"model must be one of {CVR_MODELS + WATCH_MODELS + ('ctr',)}, got {name!r}")
    return SharedBottom(None, bottom_units=settings.bottom_units, tasks=tasks[name], **sizes)


def train_selected(model, X, Y, settings: FunnelSettings, seed, criterion, monitor=None, scale: float = 1.0,
                   loss=None) -> dict:
    """Adam, one epoch at a time, with early stopping on ``criterion(model)`` (lower is better; a
    loss on validation rows): stop after ``patience`` epochs without a new best and put back the
    best epoch's parameters. ``scale`` > 1 stretches epochs and patience, for a model trained on
    fewer rows (the same budget in optimizer steps). ``monitor(model)`` is recorded after every
    epoch (a test metric, for learning curves only: it never chooses anything).

    With ``settings.fixed_epochs`` it trains exactly that many epochs (times ``scale``) and keeps
    the last parameters: no early stopping.

    Returns {"best_epoch", "epochs", "seconds", "criterion": per epoch, "monitor": per epoch}.
    """
    started = time.perf_counter()
    rng, optimizer = np.random.default_rng(seed), Adam(lr=settings.lr)
    fixed = settings.fixed_epochs is not None
    max_epochs = int(math.ceil((settings.fixed_epochs if fixed else settings.max_epochs) * scale))
    patience = max_epochs if fixed else int(math.ceil(settings.patience * scale))
    params = model.params
    curve, watched, best_epoch, saved = [], [], 0, None
    for epoch in range(1, max_epochs + 1):
        fit(model, X, Y, epochs=1, batch_size=settings.batch_size, optimizer=optimizer, loss=loss, seed=rng,
            progress=False)
        curve.append(float(criterion(model)))
        if monitor is not None:
            watched.append(float(monitor(model)))
        if fixed:
            best_epoch, saved = epoch, None
        elif saved is None or curve[-1] < curve[best_epoch - 1]:
            best_epoch, saved = epoch, {name: param.copy() for name, param in params.items()}
        elif epoch - best_epoch >= patience:
            break
    for name, param in (params.items() if saved is not None else ()):
        param[...] = saved[name]                                    # the best epoch's parameters, in place
    return {"best_epoch": best_epoch, "epochs": len(curve), "seconds": time.perf_counter() - started,
            "criterion": curve, "monitor": watched}


def own_loss(X_val, Y_val):
    """A criterion: the model's own training loss (unweighted, missing labels left out) on validation rows."""
    def criterion(model):
        return MultiTaskLoss(model.tasks).forward(model.predict_scores(X_val), Y_val)
    return criterion


RELIABILITY_BINS = 10


def reliability(p_predicted, p_true, bins: int = RELIABILITY_BINS) -> list[list[float]]:
    """[mean predicted, mean true] probability in each of ``bins`` groups of equal size, by predicted
    probability: a calibrated model's points lie on the diagonal."""
    order = np.argsort(p_predicted, kind="stable")
    return [[round(float(np.mean(p_predicted[rows])), 5), round(float(np.mean(p_true[rows])), 5)]
            for rows in np.array_split(order, bins)]


def _cvr_metrics(p_cvr, p_ctr, test) -> dict:
    """Entire-space and clicked-rows metrics of a pCVR (and, given a pCTR, the CTCVR of pCTR x pCVR)
    on the test split; its calibration on the entire space: mean predicted against true pCVR."""
    clicked = test["click"] == 1
    metrics = {"cvr_auc": auc(test["conversion"], p_cvr),                    # every impression
               "cvr_spearman": spearman(test["p_conversion"], p_cvr),
               "cvr_auc_clicked": auc(test["observed"][clicked], p_cvr[clicked]),   # what a log allows
               "mean_pcvr": float(np.mean(p_cvr)), "true_mean_pcvr": float(np.mean(test["p_conversion"])),
               "mean_pcvr_clicked": float(np.mean(p_cvr[clicked])),
               "true_mean_pcvr_clicked": float(np.mean(test["p_conversion"][clicked])),
               "reliability": reliability(p_cvr, test["p_conversion"])}
    if p_ctr is not None:
        metrics.update(ctcvr_auc=auc(test["ctcvr"], p_ctr * p_cvr), ctr_auc=auc(test["click"], p_ctr))
    return metrics


def _p_cvr(name: str, model, X) -> np.ndarray:
    """A CVR model's pCVR for every row of X."""
    if name in ESMM_MODELS:
        return model.predict_cvr(X)
    return model.predict(X)[:, 1 if name == "two-task" else 0]


def _cvr_logits(name: str, model, X) -> np.ndarray:
    """The logit of a CVR model's pCVR (ESMM: its CVR tower's output b)."""
    if name in ESMM_MODELS:
        return model.base_scores(X)[:, 1]
    return model.predict_scores(X)[:, 1 if name == "two-task" else 0]


def _log_loss(labels, p) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def run_cvr(spec: RunSpec, settings: FunnelSettings) -> RunResult:
    """One funnel; every model of ``spec.models`` (and the CTR model the single-task ones need).

    Early stopping follows ``settings.selection`` (``SELECTIONS`` says what each model is stopped
    on): ``"cvr"``, the one CVR criterion a log allows, the log loss of its pCVR on the clicked
    validation rows; ``"own"``, its own training loss on the validation split (ESMM: click +
    click-and-conversion cross-entropy on every impression); ``"ctcvr"``, ESMM's CTCVR validation
    loss alone. The all-impressions model, whose output is a pCTCVR rather than a pCVR, is always
    stopped on its own training loss, the CTR model on the click log loss.

    A spec of the size sweep (``spec.n_train``) trains on that many impressions, validates on a
    quarter as many, and trains no CTR model (no CTCVR metrics).
    """
    started = time.perf_counter()
    if spec.n_train is not None:
        settings = with_overrides(settings, n_train=spec.n_train, n_validation=max(spec.n_train // 4, 1_000))
    data_seed, model_seed = _seeds(settings, spec.run)
    options = settings.funnel_options(dict(spec.cell))
    n = settings.n_train + settings.n_validation + settings.n_test
    X, Y, truth = make_funnel(n, seed=np.random.default_rng(data_seed), return_truth=True, **options)
    labels = esmm_labels(Y)                                                   # (N, 2) click, click and conversion
    train, val, test_rows = _split(settings)
    click = Y[:, 0] == 1
    test = {"click": Y[test_rows, 0], "observed": Y[test_rows, 1], "ctcvr": labels[test_rows, 1],
            "conversion": truth.conversion[test_rows], "p_conversion": truth.p_conversion[test_rows]}
    X_train, Y_train, L_train, X_val, X_test = X[train], Y[train], labels[train], X[val], X[test_rows]
    clicked_train = np.flatnonzero(click[train])
    clicked_val = np.flatnonzero(click[val])
    X_val_clicked, y_val_clicked = X_val[clicked_val], Y[val][clicked_val, 1]
    metrics, ctr = {}, None

    def cvr_criterion(name):
        if settings.selection == "own" and name in ESMM_MODELS:
            return own_loss(X_val, labels[val])
        if settings.selection == "ctcvr" and name in ESMM_MODELS:
            return lambda model: _log_loss(labels[val, 1], model.predict(X_val)[:, 1])
        if settings.selection in ("own", "ctcvr") and name == "two-task":
            return own_loss(X_val, Y[val, :2])
        return lambda model: _log_loss(y_val_clicked, _p_cvr(name, model, X_val_clicked))

    def test_auc(name):
        return (lambda model: auc(test["conversion"], _p_cvr(name, model, X_test))) if settings.curves else None

    for index, name in enumerate(CVR_MODELS):
        if name not in spec.models:
            continue
        model = build_model(name, settings, model_seed(index))
        if name in ESMM_MODELS:
            log = train_selected(model, X_train, L_train, settings, spec.run, cvr_criterion(name), test_auc(name),
                                 loss=MultiTaskLoss(model.tasks, weights=[1.0, settings.ctcvr_weight]))
            p_ctr = model.predict(X_test)[:, 0]
        elif name == "two-task":
            log = train_selected(model, X_train, Y_train[:, :2], settings, spec.run, cvr_criterion(name),
                                 test_auc(name))
            p_ctr = model.predict(X_test)[:, 0]
        else:
            if ctr is None and spec.n_train is None:
                ctr_model = build_model("ctr", settings, model_seed(len(CVR_MODELS)))
                ctr_log = train_selected(ctr_model, X_train, Y_train[:, :1], settings, spec.run,
                                         lambda m: _log_loss(Y[val, 0], m.predict(X_val)[:, 0]))
                ctr = ctr_model.predict(X_test)[:, 0]
                metrics["CTR model"] = {"ctr_auc": auc(test["click"], ctr), "best_epoch": ctr_log["best_epoch"],
                                        "seconds": ctr_log["seconds"]}
            if name == "clicked-only":
                log = train_selected(model, X_train[clicked_train], Y_train[clicked_train, 1:2], settings, spec.run,
                                     cvr_criterion(name), test_auc(name),
                                     scale=settings.n_train / len(clicked_train))
            else:                                                             # all-impressions
                log = train_selected(model, X_train, L_train[:, 1:2], settings, spec.run,
                                     lambda m: _log_loss(labels[val, 1], m.predict(X_val)[:, 0]), test_auc(name))
            p_ctr = ctr
        logits = _cvr_logits(name, model, X_test)
        metrics[name] = dict(_cvr_metrics(_p_cvr(name, model, X_test), p_ctr, test),
                             cvr_logit_mean=float(np.mean(logits)), cvr_logit_sd=float(np.std(logits, ddof=1)),
                             best_epoch=log["best_epoch"], epochs=log["epochs"], seconds=log["seconds"],
                             curve_criterion=[round(v, 5) for v in log["criterion"]],
                             curve_cvr_auc=[round(v, 5) for v in log["monitor"]])
    cell = {k: options[k] for k in KNOBS}
    if spec.n_train is not None:
        cell["n_train"] = spec.n_train
    converted = int(np.nansum(Y_train[:, 1]))                     # conversions in the training split
    return RunResult("cvr", spec.run, cell, metrics, time.perf_counter() - started, len(clicked_train),
                     extra={"conversions_train": converted})


def run_watch(spec: RunSpec, settings: FunnelSettings) -> RunResult:
    """One funnel with watch times; every model of ``spec.models``; NDCG@10 and Spearman of the
    true expected watch time on the test split, in random groups of ``group_size`` impressions."""
    started = time.perf_counter()
    data_seed, model_seed = _seeds(settings, spec.run)
    cell = dict(spec.cell)
    n = settings.n_train + settings.n_validation + settings.n_test
    options = settings.funnel_options(cell, watch_time=True)
    X, Y, truth = make_funnel(n, seed=np.random.default_rng(data_seed), return_truth=True, **options)
    train, val, test_rows = _split(settings)
    click = Y[:, 0] == 1
    unit = float(np.mean(Y[train][click[train], 2]))          # mean seconds of a clicked training row
    seconds = Y[:, 2] / unit                                   # in units of the mean watch after a click
    zero_filled = np.where(click, seconds, 0.0)
    X_test, gain = X[test_rows], truth.expected_watch[test_rows]
    groups = np.random.default_rng(model_seed(99)).permutation(settings.n_test) // settings.group_size
    val_groups = np.random.default_rng(model_seed(98)).permutation(settings.n_validation) // settings.group_size
    metrics = {}

    def score(name, s, **extra):
        metrics[name] = dict(ndcg10=fusion.ndcg_at_k(gain, s, 10, groups=groups), spearman=spearman(gain, s), **extra)

    for index, name in enumerate(WATCH_MODELS):
        if name not in spec.models:
            continue
        model = build_model(name, settings, model_seed(index))
        if name == "zero-filled":
            log = train_selected(model, X[train], zero_filled[train, None], settings, spec.run,
                                 own_loss(X[val], zero_filled[val, None]))
            score(name, model.predict(X_test)[:, 0], best_epoch=log["best_epoch"], seconds=log["seconds"])
        elif name in ("zero-filled x pCTR", "clicked-rows x pCTR"):
            # log1p of the duration with 0 where there is no click, or its log, missing there; in units of
            # the mean watch after a click, so that the regression's loss is about as large as the click's
            duration = np.log1p(zero_filled) if name == "zero-filled x pCTR" else np.log(seconds)
            targets = np.column_stack([Y[:, 0], duration])
            log = train_selected(model, X[train], targets[train], settings, spec.run, own_loss(X[val], targets[val]))
            p_ctr, z = model.predict(X_test).T
            d = np.expm1(z) if name == "zero-filled x pCTR" else np.exp(z)
            # the power product with alpha = 1/2 ranks as pCTR x duration (log space: no under/overflow)
            score(name, fusion.power_product(np.column_stack([p_ctr, np.maximum(d, 1e-12)]), [0.5, 0.5], log=True),
                  best_epoch=log["best_epoch"], seconds=log["seconds"])
            if name == "clicked-rows x pCTR":
                score("pCTR alone", p_ctr)
                score("duration alone", z)
                # alpha chosen as a real system would: on validation rows, against the watch time they
                # actually got (0 without a click), in groups like the test's
                p_val, z_val = model.predict(X[val]).T
                search = fusion.grid_search(np.column_stack([p_val, np.exp(z_val)]),
                                            lambda f: fusion.ndcg_at_k(zero_filled[val], f, 10, groups=val_groups))
                alpha = float(search.best_weights[0])
                score("clicked-rows, alpha on validation",
                      fusion.power_product(np.column_stack([p_ctr, d]), search.best_weights, log=True), alpha=alpha)
        else:                                                                 # ESMM-style
            targets = np.column_stack([Y[:, 0], zero_filled])
            log = train_selected(model, X[train], targets[train], settings, spec.run, own_loss(X[val], targets[val]))
            score(name, model.predict_scores(X_test)[:, 1], best_epoch=log["best_epoch"], seconds=log["seconds"])
    return RunResult("watch", spec.run, {k: options[k] for k in KNOBS + ("watch_quality",)}, metrics,
                     time.perf_counter() - started, int(click[train].sum()))


def run_one(spec: RunSpec, settings: FunnelSettings) -> RunResult:
    return (run_cvr if spec.study == "cvr" else run_watch)(spec, settings)


def run_many(specs, settings: FunnelSettings, jobs: int = 1, progress: bool = True,
             description: str = "funnels") -> list[RunResult]:
    """Every spec, in ``jobs`` processes; results in the order of specs, identical for any ``jobs``."""
    return map_runs(run_one, specs, settings, jobs, progress, description)


# ---------------------------------------------------------------------------------- summaries

CVR_METRICS = (("cvr_auc", "CVR AUC, all"), ("cvr_spearman", "Spearman pCVR"),
               ("cvr_auc_clicked", "CVR AUC, clicked"), ("ctcvr_auc", "CTCVR AUC"))
WATCH_METRICS = (("ndcg10", "NDCG@10"), ("spearman", "Spearman"))


def cell_key(result: RunResult) -> tuple:
    return tuple(sorted(result.cell.items()))


def describe_cell(key) -> str:
    names = {"selection_bias": "selection bias", "click_sharpness": "click sharpness", "click_rate": "click rate",
             "watch_quality": "watch quality", "n_train": "training impressions"}
    return ", ".join(f"{names.get(k, k)} {v:g}" for k, v in key)


def values(results, model: str, metric: str, key=None) -> dict:
    """{run: value} of one model's metric in one cell (``key``; None: the only cell)."""
    return {r.run: r.metrics[model][metric] for r in results
            if (key is None or cell_key(r) == key) and model in r.metrics and metric in r.metrics[model]}


def paired_gap(results, model: str, other: str, metric: str, key=None) -> tuple[float, float, int]:
    """Mean and 95% CI half-width (Student t) of metric[model] - metric[other], paired by run (both
    trained on the same funnel), and the number of pairs."""
    a, b = values(results, model, metric, key), values(results, other, metric, key)
    gaps = [a[run] - b[run] for run in sorted(a) if run in b]
    if not gaps:
        return math.nan, math.nan, 0
    mean, ci = mean_ci95(gaps)
    return mean, ci, len(gaps)


def _cell(mean: float, ci: float, signed: bool = False) -> str:
    number = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return number + (f" +- {ci:.4f}" if not math.isnan(ci) else "")


def _models_in(results, order) -> list[str]:
    present = {m for r in results for m in r.metrics}
    return [m for m in order if m in present]


def format_cvr_cell(results, key) -> str:
    """One cell: every model's metrics (mean +- 95% CI over runs), then ESMM - each model, paired."""
    runs = [r for r in results if cell_key(r) == key]
    models = _models_in(runs, CVR_MODELS)
    clicked = np.mean([r.clicked_train for r in runs])
    lines = [f"{describe_cell(key)}: {len(runs)} run(s), {clicked:,.0f} clicked training rows on average",
             f"{'model':<17}" + "".join(f"{label:>20}" for _, label in CVR_METRICS) + f"{'epochs':>8}"
             + f"{'AUC, all, hindsight':>21}"]
    for model in models:
        cells = [_cell(*mean_ci95(list(values(runs, model, metric).values()))) for metric, _ in CVR_METRICS]
        epochs = np.mean(list(values(runs, model, "best_epoch").values()))
        hindsight = [max(curve) for curve in values(runs, model, "curve_cvr_auc").values() if curve]
        lines.append(f"{model:<17}" + "".join(f"{c:>20}" for c in cells) + f"{epochs:>8.1f}"
                     + (f"{np.mean(hindsight):>21.4f}" if hindsight else ""))
    if "ESMM" in models and len(runs) > 1:
        lines.append("ESMM minus model, paired by run:")
        for model in models:
            if model != "ESMM":
                cells = [_cell(*paired_gap(runs, "ESMM", model, metric)[:2], signed=True) for metric, _ in CVR_METRICS]
                lines.append(f"{'  ' + model:<17}" + "".join(f"{c:>20}" for c in cells))
    lines.append("AUC, all: pCVR against the counterfactual conversion of every test impression; Spearman: with the "
                 "true pCVR; clicked: the clicked test rows only; CTCVR: pCTR x pCVR against click and conversion; "
                 "epochs: the early-stopped epoch (clicked-only: in its own, shorter epochs); hindsight: the best "
                 "test AUC over the epochs trained, an upper bound no real run can choose")
    return "\n".join(lines)


def format_cvr_sweep(results, against=("clicked-only", "all-impressions", "two-task")) -> str:
    """One row per cell: ESMM's entire-space CVR AUC and its paired gaps to each baseline, on the
    entire space and on the clicked rows."""
    keys = sorted({cell_key(r) for r in results})
    against = [m for m in against if m in _models_in(results, CVR_MODELS)]
    width = max([len(describe_cell(key)) for key in keys] + [4]) + 2
    header = f"{'cell':<{width}}{'ESMM AUC, all':>18}" + "".join(
        f"{'- ' + m + (', all' if part == 'cvr_auc' else ', clicked'):>30}" for m in against
        for part in ("cvr_auc", "cvr_auc_clicked"))
    lines = [header]
    for key in keys:
        runs = [r for r in results if cell_key(r) == key]
        row = f"{describe_cell(key):<{width}}{_cell(*mean_ci95(list(values(runs, 'ESMM', 'cvr_auc').values()))):>18}"
        for model in against:
            for part in ("cvr_auc", "cvr_auc_clicked"):
                row += f"{_cell(*paired_gap(runs, 'ESMM', model, part)[:2], signed=True):>30}"
        lines.append(row)
    lines.append("ESMM's CVR AUC minus the model's, paired by run, mean +- 95% CI (Student t); "
                 "all: every test impression against its counterfactual conversion; clicked: clicked rows only")
    return "\n".join(lines)


def format_watch(results) -> str:
    """Per cell: every ranking's NDCG@10 and Spearman (mean +- 95% CI) and the ESMM-style model
    minus each, paired by run."""
    blocks = []
    for key in sorted({cell_key(r) for r in results if r.study == "watch"}):
        runs = [r for r in results if r.study == "watch" and cell_key(r) == key]
        rows = _models_in(runs, WATCH_ROWS)
        lines = [f"{describe_cell(key)}: {len(runs)} run(s)",
                 f"{'ranking by':<34}" + "".join(f"{label:>18}" for _, label in WATCH_METRICS)
                 + "".join(f"{'ESMM-style - it, ' + label:>30}" for _, label in WATCH_METRICS)]
        for model in rows:
            cells = [_cell(*mean_ci95(list(values(runs, model, metric).values()))) for metric, _ in WATCH_METRICS]
            gaps = ["" if model == "ESMM-style" else _cell(*paired_gap(runs, "ESMM-style", model, metric)[:2],
                                                           signed=True) for metric, _ in WATCH_METRICS]
            lines.append(f"{model:<34}" + "".join(f"{c:>18}" for c in cells) + "".join(f"{g:>30}" for g in gaps))
        alphas = list(values(runs, "clicked-rows, alpha on validation", "alpha").values())
        if alphas:
            lines.append(f"alpha chosen on validation: {', '.join(f'{a:g}' for a in alphas)}")
        blocks.append("\n".join(lines))
    blocks.append("NDCG@10 of the true expected watch time in test groups of impressions; Spearman with it over "
                  "every test impression; mean +- 95% CI (Student t), gaps paired by run")
    return "\n\n".join(blocks)


# ------------------------------------------------------------------------------------ studies

MAIN_CELL = ()                          # the settings' funnel: selection bias 0.9, click sharpness 3, clicks 8%
MILDER = (("selection_bias", 0.6), ("click_sharpness", 1.5))     # make_funnel's defaults before the study's results
NO_BIAS = (("selection_bias", 0.0),)
# Against the main funnel: selection bias 0, 0.6 and 0.9 at click sharpness 3 and at 1.5 (8% clicks), and the
# main funnel at 3% and 16% clicks.
SWEEP_CELLS = (NO_BIAS, (("selection_bias", 0.6),), NO_BIAS + (("click_sharpness", 1.5),), MILDER,
               (("click_sharpness", 1.5),), (("click_rate", 0.03),), (("click_rate", 0.16),))
SWEEP_MODELS = ("ESMM", "clicked-only", "all-impressions", "two-task")
WATCH_QUALITIES = (0.5, 0.9)


SIZES = (10_000, 20_000, 50_000, 100_000, 200_000)        # training impressions of the size sweep
SIZE_MODELS = ("ESMM", "ESMM-SB", "clicked-only")
SIZE_FUNNELS = (MAIN_CELL, MILDER)


def size_specs(runs: int, sizes=SIZES, funnels=SIZE_FUNNELS, models=SIZE_MODELS) -> list[RunSpec]:
    """The size sweep: every funnel at every number of training impressions, the largest first (so
    that parallel workers finish together)."""
    runs = check_positive_int("runs", runs)
    return [RunSpec("cvr", run, tuple(cell), tuple(models), n_train=check_positive_int("size", size))
            for size in sorted(sizes, reverse=True) for cell in funnels for run in range(runs)]


def format_size_sweep(results) -> str:
    """Per funnel, one row per size: the training conversions, each model's entire-space CVR AUC, the
    paired gaps to the clicked-only model, the early-stopped epochs, the spread of ESMM's CVR logit,
    and the mean pCVR against the truth."""
    sized = [r for r in results if "n_train" in r.cell]
    blocks = []
    for funnel in sorted({tuple(sorted((k, v) for k, v in r.cell.items() if k != "n_train")) for r in sized}):
        runs_of = {n: [r for r in sized if r.cell["n_train"] == n and
                       tuple(sorted((k, v) for k, v in r.cell.items() if k != "n_train")) == funnel]
                   for n in sorted({r.cell["n_train"] for r in sized})}
        models = _models_in(sized, CVR_MODELS)
        esmm_family = [m for m in models if m in ESMM_MODELS]
        lines = [f"{describe_cell(funnel)}: entire-space CVR AUC by training impressions (mean +- 95% CI over runs)",
                 f"{'impressions':>11}{'conversions':>12}" + "".join(f"{m:>18}" for m in models)
                 + "".join(f"{m + ' - clicked-only':>30}" for m in esmm_family)
                 + f"{'epochs':>14}{'sd of b':>9}" + "".join(f"{'mean pCVR ' + m:>24}" for m in models)
                 + f"{'true':>7}"]
        for n, runs in runs_of.items():
            conversions = np.mean([r.extra.get("conversions_train", np.nan) for r in runs])
            aucs = [_cell(*mean_ci95(list(values(runs, m, "cvr_auc").values()))) for m in models]
            gaps = [_cell(*paired_gap(runs, m, "clicked-only", "cvr_auc")[:2], signed=True) for m in esmm_family]
            epochs = "/".join(f"{np.mean(list(values(runs, m, 'best_epoch').values())):.0f}" for m in models)
            spread = np.mean(list(values(runs, models[0], "cvr_logit_sd").values()))
            means = [np.mean(list(values(runs, m, "mean_pcvr").values())) for m in models]
            truth = np.mean(list(values(runs, models[0], "true_mean_pcvr").values()))
            lines.append(f"{n:>11,}{conversions:>12,.0f}" + "".join(f"{a:>18}" for a in aucs)
                         + "".join(f"{g:>30}" for g in gaps) + f"{epochs:>14}{spread:>9.2f}"
                         + "".join(f"{m:>24.3f}" for m in means) + f"{truth:>7.3f}")
        lines.append(f"epochs: the early-stopped epoch of {', '.join(models)} (clicked-only: in its own, shorter "
                     f"epochs); sd of b: the standard deviation of {models[0]}'s CVR logit over the test impressions; "
                     f"mean pCVR over every test impression against the true mean")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def study_specs(runs: int, sweep_cells=SWEEP_CELLS, watch_qualities=WATCH_QUALITIES, mmoe: bool = True,
                cvr: bool = True) -> list[RunSpec]:
    """The runs of a study: the main funnel with every CVR model (ESMM-MMoE with ``mmoe``), each
    sweep cell with ``SWEEP_MODELS``, and the watch-time models at each watch quality. The heaviest
    runs come first, so that parallel workers finish together."""
    runs = check_positive_int("runs", runs)
    main = CVR_MODELS if mmoe else tuple(m for m in CVR_MODELS if m != "ESMM-MMoE")   # every other CVR model
    specs = []
    if cvr:
        specs += [RunSpec("cvr", run, MAIN_CELL, main) for run in range(runs)]
        specs += [RunSpec("cvr", run, tuple(cell), SWEEP_MODELS) for cell in sweep_cells for run in range(runs)]
    for quality in watch_qualities:
        specs += [RunSpec("watch", run, (("watch_quality", float(quality)),), WATCH_MODELS) for run in range(runs)]
    return specs


def run_study(runs: int, settings: FunnelSettings = QUICK, sweep_cells=SWEEP_CELLS, watch_qualities=WATCH_QUALITIES,
              mmoe: bool = True, cvr: bool = True, jobs: int = 1, progress: bool = True) -> list[RunResult]:
    """Every run of ``study_specs``, in ``jobs`` processes. A sweep cell that gives the same funnel
    as the main one or as an earlier cell (after a knob of ``settings`` was changed) is left out."""
    cells, seen = [], {main_cell_key(settings)}
    for cell in sweep_cells:
        key = tuple(sorted((k, v) for k, v in settings.funnel_options(dict(cell)).items() if k in KNOBS))
        if key not in seen:
            seen.add(key)
            cells.append(cell)
    return run_many(study_specs(runs, cells, watch_qualities, mmoe, cvr), settings, jobs, progress)


def main_cell_key(settings: FunnelSettings) -> tuple:
    return tuple(sorted((k, v) for k, v in settings.funnel_options({}).items() if k in KNOBS))


def format_study(results, settings: FunnelSettings) -> str:
    """The main table (the settings' funnel), the milder and the no-bias funnels' tables, the sweep,
    and the watch-time tables."""
    cvr = [r for r in results if r.study == "cvr"]
    parts = []
    if cvr:
        keys = sorted({cell_key(r) for r in cvr})
        main = dict(main_cell_key(settings))
        shown = [tuple(sorted(dict(main, **dict(cell)).items())) for cell in (MAIN_CELL, MILDER, NO_BIAS)]
        shown = [key for key in dict.fromkeys(shown) if key in keys] or keys[:1]
        parts += [format_cvr_cell(cvr, key) for key in shown]
        if len(keys) > 1:
            parts.append(format_cvr_sweep(cvr))
    if any(r.study == "watch" for r in results):
        parts.append(format_watch(results))
    return "\n\n".join(parts)


def results_as_dicts(results) -> list[dict]:
    return [asdict(r) for r in results]
