"""The MMoE paper's synthetic experiments (Ma et al., KDD 2018, sections 3 and 5), as plain data.

One *run* trains one model on one freshly generated data set and reports its test loss:

    run_one(RunSpec(model="MMoE", correlation=0.5, run=3), settings) -> RunResult

Runs are independent, so the studies below farm them out to processes (``jobs``). Every run's
seeds derive from (settings.seed, correlation, run, model) alone, so results are identical whatever
the number of jobs or the order in which runs finish. Within one (correlation, run) every model
sees the same data set, so model differences can be compared pair-wise.

- ``relatedness``: models x correlations x runs (claims 1 and 2: MoE beats Shared-Bottom; OMoE
  falls behind MMoE as the tasks grow less related).
- ``trainability``: the same records, read as distributions of the final loss (claim 3).
- ``experts_sweep``: MMoE and OMoE with E = 1, 2, 4, 8, 16 experts at one correlation.
"""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..checks import check_correlation, check_positive_int
from ..data import make_synthetic
from ..models import MODELS as MODEL_CLASSES
from ..optim import Adam
from ..presets import MMOE_PAPER
from ..progress import ProgressBar
from ..train import evaluate, fit

MODELS = ("SharedBottom", "OMoE", "MMoE")          # compared by default
# A model's seed derives from its position in the registry, which only ever grows at the end.
_SEED_ORDER = tuple(MODEL_CLASSES)


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides (model, correlation, run). Defaults: the paper's setup
    (D = 100; 8 experts of 16 units; towers of 8; Shared-Bottom of 113 units to match parameter
    counts) with a training-set size the paper does not state.

    The paper picks Adam's learning rate from {1e-4, 1e-3, 1e-2}. A pilot at the full size (10,000
    rows, 30 epochs, 8 runs at p = 1, 0.5, 0; 1e-4 not tried, as it cannot converge in 30 epochs)
    gave the lowest test loss with 1e-2 for OMoE and MMoE (0.058-0.092 against 0.075-0.093 with
    1e-3) and with 1e-3 for Shared-Bottom (0.108-0.118 against 0.115-0.135), hence the defaults.
    """

    n_features: int = 100
    n_train: int = 10_000
    n_test: int = 2_000
    n_experts: int = MMOE_PAPER.n_experts
    expert_units: tuple = MMOE_PAPER.expert_units
    bottom_units: tuple = MMOE_PAPER.bottom_units
    tower_units: tuple = MMOE_PAPER.tower_units
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-2                 # Adam's learning rate for every model ...
    model_lr: tuple = (("SharedBottom", 1e-3),)   # ... but these (model, lr) pairs
    scale: float = 1.0               # c of the generator: |w_k|
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_features", "n_train", "n_test", "n_experts", "epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        for name, lr in (("lr", self.lr), *self.model_lr):
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"learning rate of {name} must be a positive number, got {lr}")
        for model, _ in self.model_lr:
            if model not in MODEL_CLASSES:
                raise ValueError(f"model_lr names an unknown model {model!r}; models are {tuple(MODEL_CLASSES)}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive number, got {self.scale}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    def learning_rate(self, model: str) -> float:
        return dict(self.model_lr).get(model, self.lr)


QUICK = Settings(n_train=5_000, n_test=2_000, epochs=12)
FULL = Settings(n_train=10_000, n_test=5_000, epochs=30)


@dataclass(frozen=True)
class RunSpec:
    model: str
    correlation: float
    run: int
    n_experts: int | None = None     # None: settings.n_experts


@dataclass
class RunResult:
    model: str
    correlation: float
    run: int
    n_experts: int           # the MoE models' E (Shared-Bottom records the setting, unused)
    test_mse: tuple          # one per task
    test_loss: float         # sum of the two tasks' MSE, the paper's objective
    seconds: float
    train_loss: list = field(default_factory=list)   # per epoch, summed over tasks


def _seeds(settings: Settings, spec: RunSpec) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(data seed, model seed): data depends on (seed, correlation, run) only, so every model of a
    run sees the same data; the model's initialisation and batch order also depend on the model."""
    correlation_key = int(round((spec.correlation + 1.0) * 1_000_000))
    data = np.random.SeedSequence([settings.seed, correlation_key, spec.run])
    model = np.random.SeedSequence([settings.seed, correlation_key, spec.run, _SEED_ORDER.index(spec.model)])
    return data, model


def build_model(name: str, settings: Settings, n_experts: int, seed):
    """The registered model class ``name`` at the settings' sizes, for the two regression tasks."""
    _check_models([name])
    sizes = ({"bottom_units": settings.bottom_units} if name == "SharedBottom"
             else {"n_experts": n_experts, "expert_units": settings.expert_units})
    return MODEL_CLASSES[name](settings.n_features, tower_units=settings.tower_units,
                               tasks=("regression", "regression"), seed=seed, **sizes)


def run_one(spec: RunSpec, settings: Settings) -> RunResult:
    """Generate the run's data set, train the model with Adam, return its test loss."""
    data_seed, model_seed = _seeds(settings, spec)
    n_experts = spec.n_experts or settings.n_experts
    X, Y = make_synthetic(settings.n_train + settings.n_test, settings.n_features, spec.correlation,
                          seed=np.random.default_rng(data_seed), scale=settings.scale)
    train, test = slice(0, settings.n_train), slice(settings.n_train, None)
    model_rng = np.random.default_rng(model_seed)
    model = build_model(spec.model, settings, n_experts, model_rng)
    history = fit(model, X[train], Y[train], epochs=settings.epochs, batch_size=settings.batch_size,
                  optimizer=Adam(lr=settings.learning_rate(spec.model)), seed=model_rng, progress=False)
    results = evaluate(model, X[test], Y[test])
    mse = tuple(results[name]["mse"] for name in model.task_names)
    return RunResult(spec.model, spec.correlation, spec.run, n_experts, mse, float(sum(mse)),
                     float(sum(history.epoch_seconds)), [float(t) for t in history.train_total])


@contextlib.contextmanager
def _single_threaded_blas():
    """Worker processes inherit this environment: one BLAS thread each, so that ``jobs`` processes
    on ``jobs`` cores do not oversubscribe them (the small matrices here gain nothing from more)."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_many(specs: list[RunSpec], settings: Settings, jobs: int | None = None,
             progress: bool = True, description: str = "runs") -> list[RunResult]:
    """Run every spec, in ``jobs`` processes (default: all cores); results in the order of specs.

    Workers are started with ``spawn`` (fresh interpreters, one BLAS thread each), so a script that
    calls this with jobs > 1 must guard its entry point with ``if __name__ == "__main__":``, as any
    multiprocessing script must; Jupyter and the ``minimoe`` command need nothing.
    """
    jobs = check_positive_int("jobs", (os.cpu_count() or 1) if jobs is None else jobs)
    bar = ProgressBar(len(specs), description, enabled=progress)
    results: list[RunResult] = []
    try:
        if jobs == 1:
            for spec in specs:
                results.append(run_one(spec, settings))
                bar.update(1)
            return results
        import multiprocessing
        with _single_threaded_blas(), ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(run_one, specs, [settings] * len(specs)):
                results.append(result)
                bar.update(1)
        return results
    finally:
        bar.close()


def _check_models(models) -> None:
    for model in models:
        if model not in MODEL_CLASSES:
            raise ValueError(f"models must be among {tuple(MODEL_CLASSES)}, got {model!r}")


def relatedness(correlations=(1.0, 0.9, 0.5, 0.0, -0.5), runs: int = 5, models=MODELS,
                settings: Settings = QUICK, jobs: int | None = None, progress: bool = True) -> list[RunResult]:
    """Every model at every correlation, ``runs`` fresh data sets each."""
    runs = check_positive_int("runs", runs)
    correlations = [check_correlation("correlations", c) for c in correlations]
    _check_models(models)
    specs = [RunSpec(model, c, run) for c in correlations for run in range(runs) for model in models]
    return run_many(specs, settings, jobs, progress, "relatedness")


def experts_sweep(n_experts=(1, 2, 4, 8, 16), correlation: float = 0.5, runs: int = 5,
                  models=("OMoE", "MMoE"), settings: Settings = QUICK, jobs: int | None = None,
                  progress: bool = True) -> list[RunResult]:
    """MoE models with each number of experts at one correlation."""
    runs = check_positive_int("runs", runs)
    n_experts = [check_positive_int("n_experts", e) for e in n_experts]
    correlation = check_correlation("correlation", correlation)
    _check_models(models)
    specs = [RunSpec(model, correlation, run, e) for e in n_experts for run in range(runs) for model in models]
    return run_many(specs, settings, jobs, progress, "experts")


# -- summaries ---------------------------------------------------------------------------------
_T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
          2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
          2.052, 2.048, 2.045, 2.042]     # Student's t, 97.5% quantile, 1..30 degrees of freedom


def mean_ci95(values) -> tuple[float, float]:
    """Mean and the half-width of its two-sided 95% confidence interval (Student's t)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float(values.mean()), math.nan
    df = values.size - 1
    t = _T_975[df - 1] if df <= len(_T_975) else 1.96
    return float(values.mean()), float(t * values.std(ddof=1) / math.sqrt(values.size))


def summarize(results: list[RunResult], key: str = "correlation") -> dict:
    """{(model, key value): {"mean", "ci95", "sd", "runs"}} of the test loss."""
    groups: dict = {}
    for r in results:
        groups.setdefault((r.model, getattr(r, key)), []).append(r.test_loss)
    summary = {}
    for group, losses in groups.items():
        mean, ci = mean_ci95(losses)
        summary[group] = {"mean": mean, "ci95": ci, "sd": float(np.std(losses, ddof=1)) if len(losses) > 1
                          else math.nan, "runs": len(losses)}
    return summary


def paired_gaps(results: list[RunResult], worse: str, better: str, key: str = "correlation") -> dict:
    """{key value: (mean, ci95)} of test_loss[worse] - test_loss[better], paired by run (the two
    models saw the same data set in each run, so pairing removes the data set's difficulty)."""
    by_run = {(r.model, getattr(r, key), r.run): r.test_loss for r in results}
    gaps: dict = {}
    for (model, value, run), loss in by_run.items():
        if model == worse and (better, value, run) in by_run:
            gaps.setdefault(value, []).append(loss - by_run[(better, value, run)])
    return {value: mean_ci95(g) for value, g in gaps.items()}


def format_table(results: list[RunResult], key: str = "correlation") -> str:
    """Per (key value, model): mean test MSE of each task and mean test loss +- 95% CI; then the
    OMoE - MMoE and Shared-Bottom - MMoE gaps paired by run."""
    summary = summarize(results, key)
    models = [m for m in MODELS if any(m == group[0] for group in summary)]
    values = sorted({group[1] for group in summary}, reverse=key == "correlation")
    task_mse: dict = {}
    for r in results:
        task_mse.setdefault((r.model, getattr(r, key)), []).append(r.test_mse)
    lines = [f"{key:>12}  {'model':<13}{'MSE task 0':>11}{'MSE task 1':>11}{'test loss':>22}"]
    for value in values:
        for model in models:
            if (model, value) in summary:
                s, mse = summary[(model, value)], np.mean(task_mse[(model, value)], axis=0)
                lines.append(f"{value:>12g}  {model:<13}{mse[0]:>11.4f}{mse[1]:>11.4f}"
                             f"{s['mean']:>12.4f} +- {s['ci95']:.4f}")
    runs = max(s["runs"] for s in summary.values())
    lines.append(f"test loss = MSE(task 0) + MSE(task 1); mean +- 95% CI over {runs} run(s)")
    pairs = [(worse, "MMoE") for worse in ("OMoE", "SharedBottom") if worse in models and "MMoE" in models]
    if pairs and runs > 1:
        gaps = {pair: paired_gaps(results, *pair, key=key) for pair in pairs}
        lines += ["", f"{key:>12}  " + "".join(f"{w + ' - MMoE':>24}" for w, _ in pairs)]
        for value in values:
            cells = [f"{gaps[p][value][0]:+.4f} +- {gaps[p][value][1]:.4f}" if value in gaps[p] else ""
                     for p in pairs]
            lines.append(f"{value:>12g}  " + "".join(f"{c:>24}" for c in cells))
        lines.append("gap in test loss, paired by run (same data set), mean +- 95% CI; > 0: MMoE better")
    return "\n".join(lines)


def results_as_dicts(results: list[RunResult]) -> list[dict]:
    return [asdict(r) for r in results]


def with_overrides(settings: Settings, **overrides) -> Settings:
    """A copy of ``settings`` with the given fields replaced (None values ignored)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
