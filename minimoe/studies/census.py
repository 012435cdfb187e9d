"""Shared-Bottom, OMoE, MMoE, CGC and PLE on UCI Census-Income (KDD), the paper's real-data benchmark.

    data = load_census(group=1, data_home=...)
    result = train_on_census("MMoE", data, seed=0)      # test AUC per task, seconds, best epoch

Every model reads the same input layer (one embedding per categorical column next to the numeric
features) and trains with Adam and early stopping on the validation split's loss. CGC and PLE have
MMoE's parameter budget: their expert width is the one that brings their count closest to MMoE's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..checks import make_rng
from ..inputs import FeatureInput
from ..models import MODELS as MODEL_CLASSES
from ..optim import Adam
from ..train import evaluate, fit

MODELS = ("SharedBottom", "OMoE", "MMoE")                # the MMoE paper's three, the command's default
STUDY_MODELS = MODELS + ("CGC", "PLE")                   # every model the census study can train


@dataclass(frozen=True)
class CensusSettings:
    """Architecture and training of the census runs (chosen on the validation split; see README)."""

    embedding_dim: int = 8           # min(this, cardinality) per categorical column
    embedding_std: float = 0.01      # initial scale of the embeddings (see FeatureInput)
    n_experts: int = 8
    expert_units: tuple = (16,)
    bottom_units: tuple = (128,)     # Shared-Bottom: about the parameters of 8 experts of 16 units
    tower_units: tuple = (16,)
    lr: float = 1e-3
    weight_decay: float = 0.0        # Adam's decoupled weight decay
    batch_size: int = 512
    epochs: int = 40                 # at most; early stopping usually ends sooner (best epochs 20-32)
    patience: int = 5                # 3 stopped some runs at a noisy dip (best epoch 5-7)
    shared_experts: int = 4          # CGC and PLE, per level: shared experts and experts of each
    task_experts: int = 2            # task (4 + 2 x 2 = MMoE's 8), widths matched to MMoE's count
    n_levels: int = 2                # PLE


@dataclass
class CensusResult:
    model: str
    seed: int
    auc: dict = field(default_factory=dict)      # task name -> test AUC
    seconds: float = 0.0
    best_epoch: int = 0
    n_params: int = 0


def _mixture_sizes(name: str, n_features: int, n_tasks: int, settings: CensusSettings) -> dict:
    """The size keywords of model ``name``; CGC's and PLE's expert width brings their parameter count
    (input layer aside, which every model shares) the closest to MMoE's."""
    if name == "SharedBottom":
        return {"bottom_units": settings.bottom_units}
    mmoe = {"n_experts": settings.n_experts, "expert_units": settings.expert_units}
    if name not in ("CGC", "PLE"):
        return mmoe

    def count(model: str, **sizes) -> int:
        return MODEL_CLASSES[model](n_features, tower_units=settings.tower_units, tasks=("binary",) * n_tasks,
                                    seed=0, **sizes).n_params()

    structure = {"n_shared_experts": settings.shared_experts, "n_task_experts": settings.task_experts}
    if name == "PLE":
        structure["n_levels"] = settings.n_levels
    target, units = count("MMoE", **mmoe), settings.expert_units
    best = None
    for width in range(1, 16 * units[-1] + 1):
        candidate = tuple(max(1, round(u * width / units[-1])) for u in units[:-1]) + (width,)
        n = count(name, expert_units=candidate, **structure)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (candidate, n)
        if n >= target:
            break
    return dict(structure, expert_units=best[0])


def build_census_model(name: str, data, settings: CensusSettings, seed):
    rng = make_rng(seed)
    train_features = data.train[0]
    inputs = FeatureInput(data.encoder.cardinalities, n_numeric=train_features.numeric.shape[1],
                          embedding_dims=settings.embedding_dim, embedding_std=settings.embedding_std, seed=rng)
    common = dict(tower_units=settings.tower_units, tasks=("binary",) * len(data.task_names),
                  task_names=data.task_names, inputs=inputs, seed=rng)
    if name not in STUDY_MODELS:
        raise ValueError(f"model must be one of {STUDY_MODELS}, got {name!r}")
    return MODEL_CLASSES[name](None, **common, **_mixture_sizes(name, inputs.d_out, len(data.task_names), settings))


def train_on_census(name: str, data, seed: int = 0, settings: CensusSettings = CensusSettings(),
                    progress: bool = False) -> CensusResult:
    """Train one model on ``data.train`` (early stopping on ``data.validation``); test AUC per task."""
    model = build_census_model(name, data, settings, seed)
    started = time.perf_counter()
    history = fit(model, *data.train, epochs=settings.epochs, batch_size=settings.batch_size,
                  optimizer=Adam(lr=settings.lr, weight_decay=settings.weight_decay),
                  validation=data.validation, seed=seed,
                  progress=progress, early_stopping=settings.patience)
    seconds = time.perf_counter() - started
    results = evaluate(model, *data.test)
    return CensusResult(name, seed, {task: results[task]["auc"] for task in data.task_names}, seconds,
                        history.best_epoch, model.n_params())


def format_results(results: list[CensusResult], task_names) -> str:
    """Per model: mean test AUC per task with the min-max range over seeds, and training time."""
    lines = [f"{'model':<14}" + "".join(f"{'AUC ' + t:>28}" for t in task_names) + f"{'seconds':>10}{'params':>9}"]
    for name in STUDY_MODELS:
        runs = [r for r in results if r.model == name]
        if not runs:
            continue
        cells = []
        for task in task_names:
            values = np.array([r.auc[task] for r in runs])
            cells.append(f"{values.mean():.4f} ({values.min():.4f}-{values.max():.4f})".rjust(28))
        seconds = np.mean([r.seconds for r in runs])
        lines.append(f"{name:<14}" + "".join(cells) + f"{seconds:>10.1f}{runs[0].n_params:>9,}")
    seeds = sorted({r.seed for r in results})
    lines.append(f"mean (min-max) over seeds {seeds}; seconds: mean training time of one model")
    return "\n".join(lines)
