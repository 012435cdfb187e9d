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
- ``claims_report``: the three claims read off a study's results, with a verdict each. ``REGIMES``
  names the two settings where they are measured: the paper's sizes, and experts too narrow to
  serve two tasks (where claim 2 shows).

Any registered model that takes two regression tasks can be compared (CGC and PLE too), and so can
``"SingleTask"``: one model per task, trained on that task alone, the baseline the PLE paper
measures every multi-task model against (``task_gains``, ``format_gains``; ``SEESAW_*`` holds the
setting where MMoE shows the seesaw). Sizes are matched: CGC, PLE and the single-task models have
about MMoE's parameter count at the settings' sizes, and so has the Shared-Bottom unless the
settings fix its bottom (the paper's 113 units) (``model_options``, ``parameter_counts``). Every run
of a mixture model records its experts' usage per level (``level_usage``, ``own_share``,
``format_usage``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ..analysis import expert_usage
from ..checks import check_correlation, check_positive_int, check_units
from ..data import make_synthetic
from ..models import MODELS as MODEL_CLASSES
from ..models import MixtureModel
from ..optim import Adam
from ..presets import MMOE_PAPER
from ..train import evaluate, fit
from .parallel import map_runs

MODELS = ("SharedBottom", "OMoE", "MMoE")          # compared by default
SINGLE_TASK = "SingleTask"    # not a class: one model per task, each trained on its own task alone
N_TASKS = 2                   # the synthetic benchmark's two regression tasks
# Registered models that cannot take the benchmark's two regression tasks, and why.
_UNSUITED = {"ESMM": "ESMM's two tasks are a binary click -> conversion funnel, the benchmark's are regressions"}
STUDY_MODELS = tuple(name for name in MODEL_CLASSES if name not in _UNSUITED) + (SINGLE_TASK,)
# A model's seed derives from its position in the registry, which only ever grows at the end; the
# single-task baseline, which is not in the registry, has its own key, far beyond it.
_SEED_ORDER = tuple(MODEL_CLASSES)
_SINGLE_TASK_SEED_KEY = 1000


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides (model, correlation, run). Defaults: the paper's setup
    (D = 100; 8 experts of 16 units; towers of 8; Shared-Bottom of 113 units to match parameter
    counts) with a training-set size the paper does not state.

    ``bottom_units=None`` sizes the Shared-Bottom to MMoE's parameter count. CGC and PLE have
    ``shared_experts`` shared and ``task_experts`` task experts per task on each of their levels
    (PLE: ``n_levels``), and the single-task baseline E / T experts per task; their expert widths
    are chosen so that their parameter count is the closest to MMoE's (``model_options``). The
    data: ``scale`` (c) and ``noise_std`` (sigma) of the generator, one number or one per task.

    The paper picks Adam's learning rate from {1e-4, 1e-3, 1e-2}. A pilot at the full size (10,000
    rows, 30 epochs, 8 runs at p = 1, 0.5, 0; 1e-4 not tried, as it cannot converge in 30 epochs)
    gave the lowest test loss with 1e-2 for OMoE and MMoE (0.058-0.092 against 0.075-0.093 with
    1e-3) and with 1e-3 for Shared-Bottom (0.108-0.118 against 0.115-0.135), hence the defaults.
    The same pilot for CGC, PLE and the single-task models (4 runs at p = 1, 0.5, 0) gave mean test
    losses of 0.068, 0.074 and 0.079 with 1e-2 against 0.077, 0.215 (one run of PLE failed at p = 1)
    and 0.080 with 1e-3, so they share the mixtures' 1e-2.
    """

    n_features: int = 100
    n_train: int = 10_000
    n_test: int = 2_000
    n_experts: int = MMOE_PAPER.n_experts
    expert_units: tuple = MMOE_PAPER.expert_units
    bottom_units: tuple | None = MMOE_PAPER.bottom_units
    tower_units: tuple = MMOE_PAPER.tower_units
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-2                 # Adam's learning rate for every model ...
    model_lr: tuple = (("SharedBottom", 1e-3),)   # ... but these (model, lr) pairs
    scale: float | tuple = 1.0       # c of the generator: |w_k| (one number, or one per task)
    seed: int = 0
    shared_experts: int = 4          # CGC and PLE, per level: experts every task's gate sees ...
    task_experts: int = 2            # ... and experts of each task's own (4 + 2 x 2 = MMoE's 8)
    n_levels: int = 2                # PLE's extraction levels
    noise_std: float | tuple = 0.1   # sigma of the generator's label noise (one number, or one per task)

    def __post_init__(self) -> None:
        for name in ("expert_units", "bottom_units", "tower_units", "scale", "noise_std"):
            value = getattr(self, name)
            if isinstance(value, list):                     # hashable, so that sizes can be cached
                object.__setattr__(self, name, tuple(value))
        for name in ("n_features", "n_train", "n_test", "n_experts", "epochs", "batch_size", "n_levels"):
            check_positive_int(name, getattr(self, name))
        for name in ("shared_experts", "task_experts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.shared_experts + self.task_experts == 0:
            raise ValueError("shared_experts and task_experts cannot both be 0: a task's gate needs experts")
        check_units("expert_units", self.expert_units)
        check_units("tower_units", self.tower_units, allow_empty=True)
        if self.bottom_units is not None:
            check_units("bottom_units", self.bottom_units, allow_empty=True)   # (): the towers read x
        for name, lr in (("lr", self.lr), *self.model_lr):
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"learning rate of {name} must be a positive number, got {lr}")
        for model, _ in self.model_lr:
            if model not in STUDY_MODELS:
                raise ValueError(f"model_lr names an unknown model {model!r}; models are {STUDY_MODELS}")
        for name, allow_zero in (("scale", False), ("noise_std", True)):
            values = getattr(self, name)
            values = values if isinstance(values, tuple) else (values,)
            if len(values) not in (1, N_TASKS) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and (v > 0 or (allow_zero and v == 0)) for v in values):
                raise ValueError(f"{name} must be a positive number{' or 0' if allow_zero else ''}, or one per "
                                 f"task ({N_TASKS}), got {getattr(self, name)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    def learning_rate(self, model: str) -> float:
        return dict(self.model_lr).get(model, self.lr)


QUICK = Settings(n_train=5_000, n_test=2_000, epochs=12)
FULL = Settings(n_train=10_000, n_test=5_000, epochs=30)

# Experts too narrow to serve two tasks: 2 experts of 1 unit (MMoE: 656 parameters), the Shared-Bottom
# matched to them (5 units), CGC and PLE with one shared and one task expert per task. A pilot (3
# runs, 4 correlations) trained the 5-unit Shared-Bottom far better with Adam at 1e-2 than at 1e-3
# (test loss 0.06-0.13 against 0.85-1.5), so every model uses 1e-2 here.
NARROW_QUICK = Settings(n_train=5_000, n_test=2_000, epochs=12, n_experts=2, expert_units=(1,), bottom_units=None,
                        model_lr=(), shared_experts=1, task_experts=1)
NARROW_FULL = replace(NARROW_QUICK, n_train=10_000, n_test=5_000, epochs=30)


# The seesaw study (``minimoe seesaw``): task 1 five times noisier than task 0, every multi-task
# model measured against the single-task models. Pilots at the full size (4-6 runs at p = 1, 0.5,
# 0) tried label scales (1, 2), (1, 3) and noise (0.1, 1.0), narrow backbones (2 or 4 experts of 4
# units) and three tasks of which two are related; noise (0.1, 0.5) gave the clearest seesaw for MMoE
# (p = 0.5: task 0 +25%, task 1 -12% against the single-task models), see the README.
SEESAW_QUICK = replace(QUICK, bottom_units=None, noise_std=(0.1, 0.5))
SEESAW_FULL = replace(FULL, bottom_units=None, noise_std=(0.1, 0.5))
SEESAW_MODELS = ("SharedBottom", "MMoE", "CGC", "PLE")
SEESAW_CORRELATIONS = (1.0, 0.5, 0.0)
SEESAW_DESCRIPTION = ("tasks of different noise: label noise sd 0.1 on task 0 and 0.5 on task 1 (the signal's "
                      "variance is about 1.28 per task); the Shared-Bottom matched to MMoE's parameter count")


@dataclass(frozen=True)
class Regime:
    """A named pair of settings (the quick run and the full study) and what to expect of it."""

    name: str
    quick: Settings
    full: Settings
    description: str


REGIMES = {
    "paper": Regime("paper", QUICK, FULL,
                    "the MMoE paper's sizes: 8 experts of 16 units, a Shared-Bottom of 113 units, towers of 8. "
                    "Each expert is wide enough to serve both tasks, so a single gate loses little: "
                    "claims 1 and 3 are expected here, claim 2 is small or absent."),
    "narrow": Regime("narrow", NARROW_QUICK, NARROW_FULL,
                     "experts too narrow to share: 2 experts of 1 unit, the Shared-Bottom matched to them, Adam "
                     "1e-2 for every model. One unit cannot carry two unrelated signals, so OMoE's single gate "
                     "must pick one task and give up the other, while MMoE gives each task its own expert: "
                     "claim 2 is expected here, the 5-unit Shared-Bottom can serve both tasks."),
}


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
    n_params: int = 0        # trainable parameters (the single-task baseline: of its T models together)
    usage: list = field(default_factory=list)        # mixture models: per level, ``level_usage``


def _seeds(settings: Settings, spec: RunSpec) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(data seed, model seed): data depends on (seed, correlation, run) only, so every model of a
    run sees the same data; the model's initialisation and batch order also depend on the model."""
    correlation_key = int(round((spec.correlation + 1.0) * 1_000_000))
    data = np.random.SeedSequence([settings.seed, correlation_key, spec.run])
    key = _SINGLE_TASK_SEED_KEY if spec.model == SINGLE_TASK else _SEED_ORDER.index(spec.model)
    model = np.random.SeedSequence([settings.seed, correlation_key, spec.run, key])
    return data, model


# -- sizes: every model at about MMoE's parameter count ---------------------------------------------
def _scaled_units(units: tuple, width: int) -> tuple:
    """``units`` with its last layer ``width`` wide and the others scaled in proportion."""
    return tuple(max(1, round(u * width / units[-1])) for u in units[:-1]) + (width,)


def _closest_units(count, units: tuple, target: int, name: str) -> tuple:
    """The widths (``units`` scaled) whose parameter count ``count(units)`` is the closest to target."""
    best = None
    for width in range(1, 16 * units[-1] + 1):
        candidate = _scaled_units(units, width)
        n = count(candidate)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (candidate, n)
        if n >= target:
            return best[0]
    raise ValueError(f"no width of {name} reaches {target} parameters")


def _count(name: str, settings: Settings, n_tasks: int = N_TASKS, **options) -> int:
    model = MODEL_CLASSES[name](settings.n_features, tower_units=settings.tower_units,
                                tasks=("regression",) * n_tasks, seed=0, **options)
    return model.n_params()


@functools.lru_cache(maxsize=256)
def model_options(name: str, settings: Settings, n_experts: int | None = None) -> dict:
    """The size keywords of model ``name`` in a study at ``settings`` (with E = ``n_experts``, default
    ``settings.n_experts``), for the two regression tasks.

    OMoE and MMoE: E experts of ``expert_units``. Every other model is sized to MMoE's parameter
    count at those sizes: the Shared-Bottom's bottom (unless ``settings.bottom_units`` fixes it), the
    expert widths of CGC and PLE (``shared_experts`` + ``task_experts`` per task on each level), and
    for ``"SingleTask"`` the expert width of its T one-task models, each with E / T experts (a
    one-task MMoE), so that the T of them together have MMoE's count. Widths keep the layer pattern
    of ``expert_units`` / ``bottom_units``; the closest count wins.
    """
    _check_models([name])
    n_experts = n_experts or settings.n_experts
    mmoe = {"n_experts": n_experts, "expert_units": settings.expert_units}
    if name in ("OMoE", "MMoE"):
        return dict(mmoe)
    target = _count("MMoE", settings, **mmoe)
    if name == "SharedBottom":
        if settings.bottom_units is not None:
            return {"bottom_units": settings.bottom_units}
        units = _closest_units(lambda u: _count(name, settings, bottom_units=u), settings.expert_units, target,
                               "the shared bottom")
        return {"bottom_units": units}
    if name in ("CGC", "PLE"):
        structure = {"n_shared_experts": settings.shared_experts, "n_task_experts": settings.task_experts}
        if name == "PLE":
            structure["n_levels"] = settings.n_levels
        units = _closest_units(lambda u: _count(name, settings, expert_units=u, **structure),
                               settings.expert_units, target, f"{name}'s experts")
        return dict(structure, expert_units=units)
    if name == SINGLE_TASK:
        per_task = max(1, n_experts // N_TASKS)
        units = _closest_units(lambda u: N_TASKS * _count("MMoE", settings, n_tasks=1, n_experts=per_task,
                                                          expert_units=u),
                               settings.expert_units, target, "the single-task experts")
        return {"n_experts": per_task, "expert_units": units}
    raise ValueError(f"the synthetic study has no sizes for model {name!r}")   # pragma: no cover - registry grew


def parameter_counts(models, settings: Settings, n_experts: int | None = None) -> dict:
    """{model: (trainable parameters, size keywords)} at the study's sizes (``model_options``); the
    single-task baseline counts its T models together."""
    counts = {}
    for name in models:
        options = model_options(name, settings, n_experts)
        if name == SINGLE_TASK:
            counts[name] = (N_TASKS * _count("MMoE", settings, n_tasks=1, **options), options)
        else:
            counts[name] = (_count(name, settings, **options), options)
    return counts


def describe_sizes(models, settings: Settings, n_experts: int | None = None) -> str:
    """One line per model: its sizes and parameter count, and how far that is from MMoE's."""
    counts = parameter_counts(models, settings, n_experts)
    mmoe = _count("MMoE", settings, n_experts=n_experts or settings.n_experts, expert_units=settings.expert_units)
    lines = []
    for name, (count, options) in counts.items():
        sizes = ", ".join(f"{key}={list(value) if isinstance(value, tuple) else value}"
                          for key, value in options.items())
        if name == SINGLE_TASK:
            sizes = f"{N_TASKS} one-task models of {sizes}"
        off = "  (cannot be matched at these sizes)" if name in _MATCHED and abs(count / mmoe - 1) > 0.1 else ""
        lines.append(f"  {name:<13}{count:>8,} parameters ({count / mmoe - 1:+.1%} vs MMoE)  {sizes}{off}")
    return "\n".join(lines)


_MATCHED = ("CGC", "PLE", SINGLE_TASK)    # sized to MMoE's count by model_options


def build_model(name: str, settings: Settings, n_experts: int, seed):
    """The registered model class ``name`` at the study's sizes (``model_options``), for the two
    regression tasks."""
    options = model_options(name, settings, n_experts)
    return MODEL_CLASSES[name](settings.n_features, tower_units=settings.tower_units,
                               tasks=("regression", "regression"), seed=seed, **options)


def level_usage(model, X) -> list[dict]:
    """Per level of a mixture model: ``experts``, (T, E) each task's mean gate weight on each expert
    (``analysis.expert_usage``), and ``groups``, {group: its expert indices} (``shared``,
    ``task<k>``); [] for a model without gates."""
    if not isinstance(model, MixtureModel):
        return []
    return [{"level": level, "experts": expert_usage(model, X, level).tolist(),
             "groups": {name: columns.tolist() for name, columns in model.expert_groups(level).items()}}
            for level in range(len(model.levels))]


def _train(model, X, Y, settings: Settings, lr: float, rng):
    history = fit(model, X, Y, epochs=settings.epochs, batch_size=settings.batch_size, optimizer=Adam(lr=lr),
                  seed=rng, progress=False)
    return history


def run_one(spec: RunSpec, settings: Settings) -> RunResult:
    """Generate the run's data set, train the model with Adam, return its test loss (and, for a
    mixture model, its experts' usage on the test rows)."""
    data_seed, model_seed = _seeds(settings, spec)
    n_experts = spec.n_experts or settings.n_experts
    X, Y = make_synthetic(settings.n_train + settings.n_test, settings.n_features, spec.correlation,
                          seed=np.random.default_rng(data_seed), scale=settings.scale,
                          noise_std=settings.noise_std)
    train, test = slice(0, settings.n_train), slice(settings.n_train, None)
    lr = settings.learning_rate(spec.model)
    if spec.model == SINGLE_TASK:
        options = model_options(SINGLE_TASK, settings, n_experts)
        mse, seconds, train_loss, n_params = [], 0.0, np.zeros(settings.epochs), 0
        for k, task_seed in enumerate(model_seed.spawn(N_TASKS)):
            rng = np.random.default_rng(task_seed)
            model = MODEL_CLASSES["MMoE"](settings.n_features, tower_units=settings.tower_units,
                                         tasks=("regression",), seed=rng, **options)
            history = _train(model, X[train], Y[train, k:k + 1], settings, lr, rng)
            mse.append(evaluate(model, X[test], Y[test, k:k + 1])[model.task_names[0]]["mse"])
            seconds += sum(history.epoch_seconds)
            train_loss += history.train_total
            n_params += model.n_params()
        mse = tuple(mse)
        return RunResult(spec.model, spec.correlation, spec.run, n_experts, mse, float(sum(mse)), float(seconds),
                         [float(t) for t in train_loss], n_params)
    model_rng = np.random.default_rng(model_seed)
    model = build_model(spec.model, settings, n_experts, model_rng)
    history = _train(model, X[train], Y[train], settings, lr, model_rng)
    results = evaluate(model, X[test], Y[test])
    mse = tuple(results[name]["mse"] for name in model.task_names)
    return RunResult(spec.model, spec.correlation, spec.run, n_experts, mse, float(sum(mse)),
                     float(sum(history.epoch_seconds)), [float(t) for t in history.train_total],
                     model.n_params(), level_usage(model, X[test]))


def run_many(specs: list[RunSpec], settings: Settings, jobs: int | None = None,
             progress: bool = True, description: str = "runs") -> list[RunResult]:
    """Run every spec, in ``jobs`` processes (default: all cores); results in the order of specs
    (``parallel.map_runs``)."""
    return map_runs(run_one, specs, settings, jobs, progress, description)


def _check_models(models) -> None:
    for model in models:
        if model in _UNSUITED:
            raise ValueError(f"{model} cannot be trained on the synthetic benchmark: {_UNSUITED[model]}")
        if model not in STUDY_MODELS:
            raise ValueError(f"models must be among {STUDY_MODELS}, got {model!r}")


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


def models_in(results) -> list[str]:
    """The models of ``results`` in study order: the single-task baseline, then the registry's order."""
    present = {r.model for r in results}
    return [m for m in (SINGLE_TASK,) + tuple(MODEL_CLASSES) if m in present]


def _interval(mean: float, half: float) -> str:
    return f"{mean:+.4f} +- {half:.4f}" if not math.isnan(half) else f"{mean:+.4f}"


def format_table(results: list[RunResult], key: str = "correlation", reference: str = "MMoE") -> str:
    """Per (key value, model): mean test MSE of each task and mean test loss +- 95% CI; then each
    other model's gap to ``reference`` (MMoE), paired by run."""
    summary = summarize(results, key)
    models = models_in(results)
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
    others = [m for m in models if m != reference]
    if reference in models and others and runs > 1:
        gaps = {other: paired_gaps(results, other, reference, key=key) for other in others}
        lines += ["", f"{key:>12}  " + "".join(f"{o + ' - ' + reference:>24}" for o in others)]
        for value in values:
            cells = [_interval(*gaps[o][value]) if value in gaps[o] else "" for o in others]
            lines.append(f"{value:>12g}  " + "".join(f"{c:>24}" for c in cells))
        lines.append(f"gap in test loss, paired by run (same data set), mean +- 95% CI; > 0: {reference} better")
    return "\n".join(lines)


# -- the PLE paper's measure: each task's gain over single-task models --------------------------
def task_gains(results: list[RunResult], baseline: str = SINGLE_TASK, key: str = "correlation") -> dict:
    """{(model, key value): per task (mean, ci95, relative)} of the gain MSE_k[baseline] - MSE_k[model],
    paired by run (the same data set); > 0: the model does better than the single-task models on
    task k. ``relative`` is the mean gain over the baseline's mean MSE of that task."""
    by_run = {(r.model, getattr(r, key), r.run): r.test_mse for r in results}
    paired: dict = {}
    for (model, value, run), mse in by_run.items():
        if model != baseline and (baseline, value, run) in by_run:
            base = by_run[(baseline, value, run)]
            paired.setdefault((model, value), []).append((np.subtract(base, mse), base))
    gains = {}
    for group, rows in paired.items():
        differences = np.array([row[0] for row in rows])            # (runs, T)
        base_mean = np.array([row[1] for row in rows]).mean(axis=0)  # (T,)
        gains[group] = [(*mean_ci95(differences[:, k]), float(differences[:, k].mean() / base_mean[k]))
                        for k in range(differences.shape[1])]
    return gains


def seesaw_verdict(gains_of_tasks) -> str:
    """What the per-task gains say, counting a gain only where its 95% interval excludes 0:
    ``seesaw`` (one task gains, another loses), ``all gain``, ``all lose``, ``gain / tie``,
    ``lose / tie``, or ``no clear difference``."""
    signs = []
    for mean, half, _ in gains_of_tasks:
        clear = not math.isnan(half) and abs(mean) > half
        signs.append(0 if not clear else (1 if mean > 0 else -1))
    if 1 in signs and -1 in signs:
        return "seesaw"
    if all(s == 1 for s in signs):
        return "all gain"
    if all(s == -1 for s in signs):
        return "all lose"
    if 1 in signs:
        return "gain / tie"
    if -1 in signs:
        return "lose / tie"
    return "no clear difference"


def format_gains(results: list[RunResult], key: str = "correlation", baseline: str = SINGLE_TASK) -> str:
    """Per (key value, model): each task's gain over the single-task models, MSE_k(single-task) -
    MSE_k(model), mean +- 95% CI paired by run and as a share of the single-task MSE; and the verdict
    (``seesaw_verdict``)."""
    gains = task_gains(results, baseline, key)
    if not gains:
        return f"(no gains: the results hold no {baseline} runs to pair with)"
    models = [m for m in models_in(results) if m != baseline]
    values = sorted({value for _, value in gains}, reverse=key == "correlation")
    n_tasks = len(next(iter(gains.values())))
    lines = [f"{key:>12}  {'model':<13}" + "".join(f"{'gain task ' + str(k):>30}" for k in range(n_tasks))
             + f"{'verdict':>22}"]
    for value in values:
        for model in models:
            if (model, value) in gains:
                cells = [f"{_interval(mean, half)} ({relative:+.0%})" for mean, half, relative in gains[(model, value)]]
                lines.append(f"{value:>12g}  {model:<13}" + "".join(f"{c:>30}" for c in cells)
                             + f"{seesaw_verdict(gains[(model, value)]):>22}")
    runs = max(len([r for r in results if r.model == baseline and getattr(r, key) == v]) for v in values)
    lines.append(f"gain on task k = MSE_k({baseline}) - MSE_k(model), paired by run (same data set), mean +- 95% CI "
                 f"over {runs} run(s) (share of the single-task MSE); > 0: the multi-task model is better. "
                 "verdict: a task counts as gaining or losing where its interval excludes 0")
    return "\n".join(lines)


def seesaw_summary(results: list[RunResult], key: str = "correlation") -> str:
    """One line per multi-task model: at which values of ``key`` it shows the seesaw (one task
    clearly gains over the single-task models while another clearly loses), and its verdicts elsewhere."""
    gains = task_gains(results, key=key)
    lines = ["Seesaw (a task gains while another loses, each interval clear of 0):"]
    for model in [m for m in models_in(results) if m != SINGLE_TASK]:
        values = sorted({value for m, value in gains if m == model}, reverse=key == "correlation")
        verdicts = {value: seesaw_verdict(gains[(model, value)]) for value in values}
        seesaws = [value for value in values if verdicts[value] == "seesaw"]
        where = (f"seesaw at {key} {', '.join(f'{v:g}' for v in seesaws)}" if seesaws else "no seesaw")
        rest = "; ".join(f"{v:g}: {verdicts[v]}" for v in values)
        lines.append(f"  {model:<13}{where} ({rest})")
    return "\n".join(lines)


# -- expert utilization per level -------------------------------------------------------------------
def own_share(usage: dict) -> np.ndarray:
    """(T,) from one level's ``level_usage`` entry: the share of task k's gate weight that is its own.

    With task groups (CGC, PLE) it is the weight on group ``task<k>`` (``analysis.group_usage``); the
    rest goes to the shared experts. Without (MMoE, OMoE) every expert is shared, and task k's own
    part is the weight no other task matches, sum_i max(0, u_ki - max_{j != k} u_ji): 0 when the
    gates weigh the experts alike (OMoE's one gate, MMoE's at initialisation), 1 when task k's experts
    are used by no other task.
    """
    weights = np.asarray(usage["experts"])                             # (T, E)
    groups = usage["groups"]
    n_tasks = weights.shape[0]
    if any(name.startswith("task") for name in groups):
        return np.array([weights[k, groups[f"task{k}"]].sum() if f"task{k}" in groups else 0.0
                         for k in range(n_tasks)])
    if n_tasks == 1:
        return np.ones(1)
    return np.array([np.clip(weights[k] - np.delete(weights, k, axis=0).max(axis=0), 0.0, None).sum()
                     for k in range(n_tasks)])


def usage_table(results: list[RunResult], key: str = "correlation") -> dict:
    """{(model, level, key value): per task (mean, ci95)} of ``own_share`` over runs."""
    shares: dict = {}
    for r in results:
        for entry in r.usage:
            shares.setdefault((r.model, entry["level"], getattr(r, key)), []).append(own_share(entry))
    return {group: [mean_ci95(np.array(rows)[:, k]) for k in range(len(rows[0]))] for group, rows in shares.items()}


def format_usage(results: list[RunResult], key: str = "correlation") -> str:
    """Per (key value, model, level): the share of each task's gate weight on its own experts
    (``own_share``), mean +- 95% CI over runs; the rest goes to the shared experts."""
    table = usage_table(results, key)
    if not table:
        return "(no mixture model among the results)"
    values = sorted({group[2] for group in table}, reverse=key == "correlation")
    n_tasks = len(next(iter(table.values())))
    lines = [f"{key:>12}  {'model':<7}{'level':>6}" + "".join(f"{'own share task ' + str(k):>24}"
                                                             for k in range(n_tasks))]
    for value in values:
        for model in models_in(results):
            for level in sorted({group[1] for group in table if group[0] == model}):
                if (model, level, value) in table:
                    cells = [f"{mean:.3f} +- {half:.3f}" if not math.isnan(half) else f"{mean:.3f}"
                             for mean, half in table[(model, level, value)]]
                    lines.append(f"{value:>12g}  {model:<7}{level:>6}" + "".join(f"{c:>24}" for c in cells))
    lines.append("own share: task k's mean gate weight on its own experts (CGC, PLE: its task group; the rest goes "
                 "to the shared ones), or, where every expert is shared (MMoE, OMoE), the part of it no other "
                 "task's gate matches (sum_i max(0, u_ki - u_ji)); on the test rows, mean +- 95% CI over runs")
    return "\n".join(lines)


# -- the MMoE paper's three claims, read off a study's results -----------------------------------
def _clear(mean: float, half: float) -> int:
    """+1 / -1 where the 95% interval lies above / below 0, else 0."""
    if math.isnan(half) or abs(mean) <= half:
        return 0
    return 1 if mean > 0 else -1


def claims_report(results: list[RunResult]) -> str:
    """The MMoE paper's three claims, each with the figures that decide it and a verdict (shows,
    partly, does not show), for whichever of them the models in ``results`` can test:

    1. MoE beats Shared-Bottom: Shared-Bottom - MMoE (and - OMoE) clearly > 0 at every correlation;
    2. OMoE falls behind MMoE as the tasks grow less related: OMoE - MMoE clearly > 0 at the lowest
       correlation and larger there than at the highest, by more than the two intervals' combined
       half-width (the two correlations' data sets differ, so that gap is not paired); partly when
       only one of the two holds;
    3. Shared-Bottom is harder to train: its final loss varies more across runs (standard deviation)
       than MMoE's at every correlation.
    """
    models = set(models_in(results))
    summary = summarize(results)
    values = sorted({r.correlation for r in results}, reverse=True)
    lines = []

    def verdict(hits: int, total: int) -> str:
        return "shows" if hits == total else ("partly" if hits else "does not show")

    if "SharedBottom" in models and models & {"OMoE", "MMoE"}:
        cells, hits, total = [], 0, 0
        for mixture in [m for m in ("OMoE", "MMoE") if m in models]:
            gaps = paired_gaps(results, "SharedBottom", mixture)
            clear = [value for value in values if value in gaps and _clear(*gaps[value]) > 0]
            hits, total = hits + len(clear), total + len([v for v in values if v in gaps])
            low, high = min(g[0] for g in gaps.values()), max(g[0] for g in gaps.values())
            cells.append(f"Shared-Bottom - {mixture} {low:+.3f} to {high:+.3f}, clear of 0 at "
                         f"{len(clear)}/{len(gaps)} correlations")
        lines.append(f"Claim 1, MoE beats Shared-Bottom: {verdict(hits, total)} ({'; '.join(cells)})")
    if {"OMoE", "MMoE"} <= models and len(values) > 1:
        gaps = paired_gaps(results, "OMoE", "MMoE")
        high, low = gaps[values[0]], gaps[values[-1]]
        ahead = [value for value in values if _clear(*gaps[value]) > 0]
        grows = low[0] - high[0] > math.hypot(high[1], low[1]) if not math.isnan(high[1]) else False
        behind = _clear(*low) > 0
        state = "shows" if grows and behind else ("partly" if grows or behind else "does not show")
        lines.append(f"Claim 2, OMoE falls behind MMoE as tasks grow less related: {state} (OMoE - MMoE "
                     f"{_interval(*high)} at p = {values[0]:g}, {_interval(*low)} at p = {values[-1]:g}; "
                     f"MMoE clearly ahead at {len(ahead)}/{len(values)} correlations"
                     + (f": {', '.join(f'{v:g}' for v in ahead)})" if ahead else ")"))
    if {"SharedBottom", "MMoE"} <= models and summary[("MMoE", values[0])]["runs"] > 2:
        ratios = [summary[("SharedBottom", v)]["sd"] / summary[("MMoE", v)]["sd"] for v in values]
        state = verdict(sum(r > 1 for r in ratios), len(ratios))
        lines.append(f"Claim 3, Shared-Bottom varies more across runs: {state}"
                     f" (standard deviation of the final loss, Shared-Bottom / MMoE: "
                     + ", ".join(f"{r:.1f}x at p = {v:g}" for r, v in zip(ratios, values)) + ")")
    return "\n".join(lines)


def results_as_dicts(results: list[RunResult]) -> list[dict]:
    return [asdict(r) for r in results]


def results_from_dicts(rows, regime: str | None = None) -> list[RunResult]:
    """``RunResult`` records back from ``results_as_dicts`` rows (a saved JSON file), to summarise or
    plot them again; with ``regime``, only the rows of that regime (``minimoe compare --save-json``
    names it in each row)."""
    names = {f.name for f in fields(RunResult)}
    return [RunResult(**{k: (tuple(v) if k == "test_mse" else v) for k, v in row.items() if k in names})
            for row in rows if regime is None or row.get("regime") == regime]


def with_overrides(settings: Settings, **overrides) -> Settings:
    """A copy of ``settings`` with the given fields replaced (None values ignored)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
