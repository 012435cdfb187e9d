"""Shared-Bottom, One-gate MoE (OMoE), Multi-gate MoE (MMoE), CGC and PLE.

All of them map X: (N, D) to scores: (N, T), one column per task: a logit for a binary task, a
value for a regression task. Every tower is an MLP of widths ``tower_units`` followed by a linear
layer to one output.

    Shared-Bottom  y_k = h_k(f(x))
    OMoE           y_k = h_k(sum_i g_i(x) f_i(x))        one gate g for all tasks
    MMoE           y_k = h_k(sum_i g_{k,i}(x) f_i(x))    one gate g_k per task
    CGC            y_k = h_k(sum_{i in S_k + S_0} g_{k,i}(x) f_i(x))   task experts S_k next to shared S_0
    PLE            CGC levels stacked, with a shared gate between them

The mixture models are configurations of one block, ``MixtureLayer`` (``moe.py``), kept in
``levels``; ``MixtureModel`` runs any stack of them.

Default sizes are the MMoE paper's synthetic set-up (``presets.MMOE_PAPER``): 8 experts of 16 units,
towers of 8, and a Shared-Bottom of 113 units, which gives it about MMoE's parameter count at
D = 100 inputs.
"""

from __future__ import annotations

import inspect

import numpy as np

from .checks import check_dtype, check_matrix, check_positive_int, check_targets, check_units, make_rng
from .functions import sigmoid
from .heads import FunnelHead
from .initializers import check_init
from .inputs import FeatureInput
from .layers import MLP, Linear
from .module import Module, ModuleList, add_gradients
from .moe import ExpertGroup, GateSpec, MixtureLayer
from .presets import MMOE_PAPER
from .tasks import make_tasks

PREDICT_BATCH = 8192   # rows per forward pass in predict / gate_weights, to bound memory


def _as_json(value):
    """Tuples as lists and NumPy scalars as Python numbers, so that a config survives JSON."""
    if isinstance(value, (tuple, list)):
        return [_as_json(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def constructor_config(cls, arguments: dict) -> dict:
    """A model's architecture, derived once from its constructor's arguments: every parameter of
    ``cls.__init__`` but ``seed``, with the value it got (defaults included), keyword options (ESMM's
    backbone options) spread out, in JSON types. ``cls(**config)`` rebuilds the architecture;
    ``MultiTaskModel`` then writes the resolved tasks, dtype and input layer over it."""
    config = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "seed", "inputs"):
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            config.update(arguments[name])
        else:
            config[name] = arguments[name]
    return {name: _as_json(value) for name, value in config.items()}


class MultiTaskModel(Module):
    """What every model shares: the optional input layer, the towers, checks, predict and save.

        X --inputs--> x (N, D) --backbone--> T tower inputs (N, H) --towers--> scores (N, T)

    A model class's ``__init__`` starts with ``super().__init__(locals())`` (its arguments make the
    config), then builds its backbone and towers. It implements ``backbone_forward(x)`` (a list of T
    tower inputs), ``backbone_backward(dtower_inputs, input_grad)`` (d loss / d x, or None when
    ``input_grad`` is False) and ``backbone_reached_by(task)``; if its backbone has a regulariser it
    also implements ``backbone_backward_auxiliary(input_grad)``. The rest, including the public
    ``forward`` and ``backward``, is here.
    """

    def __init__(self, arguments: dict) -> None:
        """``arguments``: the model constructor's arguments, as ``locals()`` at its first line (so
        defaults are included). They make the tasks, the dtype, the generator, the input layer and
        ``config``, the architecture saved next to the parameters."""
        super().__init__()
        self.tasks = make_tasks(arguments["tasks"], arguments["task_names"])
        self.task_names = tuple(task.name for task in self.tasks)
        self.n_tasks = len(self.tasks)
        self.dtype = check_dtype(arguments["dtype"])
        self.init = check_init(arguments["init"])
        self.rng = make_rng(arguments["seed"])
        self.inputs = None
        n_features, inputs = arguments["n_features"], arguments["inputs"]
        if inputs is not None:
            if isinstance(inputs, dict):                  # as saved in a model file's config
                inputs = FeatureInput(**inputs, seed=self.rng, dtype=self.dtype)
            if not isinstance(inputs, FeatureInput):
                raise TypeError(f"inputs must be a FeatureInput, got {type(inputs).__name__}")
            if n_features is not None and n_features != inputs.d_out:
                raise ValueError(f"n_features must be None or the input layer's width {inputs.d_out}, got {n_features}")
            n_features = inputs.d_out
            self.inputs = inputs
        self.n_features = check_positive_int("n_features", n_features)
        self.config = constructor_config(type(self), arguments)
        self.config.update(n_features=self.n_features, tasks=[task.kind for task in self.tasks],
                           task_names=list(self.task_names), dtype=self.dtype.name, init=self.init)
        if self.inputs is not None:
            self.config["inputs"] = self.inputs.config
        self.rows_of_last_forward = None

    def make_towers(self, d_in: int, tower_units) -> None:
        """One MLP per task (ReLU between layers) ending in a linear layer to one score."""
        units = check_units("tower_units", tower_units, allow_empty=True) + (1,)
        self.towers = ModuleList([MLP(d_in, units, self.rng, activate_last=False, init=self.init, dtype=self.dtype)
                                  for _ in range(self.n_tasks)])

    # -- the backbone (subclasses) ----------------------------------------------------------------
    def backbone_forward(self, x: np.ndarray) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def backbone_backward(self, dtower_inputs: list[np.ndarray], input_grad: bool):  # pragma: no cover
        raise NotImplementedError

    def backbone_backward_auxiliary(self, input_grad: bool):
        """The regularisers' gradient with respect to x (None when the backbone has none)."""
        return None

    # -- the public computation -----------------------------------------------------------------
    def check_inputs(self, X):
        """X as a finite (N, n_features) array of the model's dtype (or, with an input layer, a
        checked batch of ids and numeric features), or a clear error."""
        if self.inputs is not None:
            return self.inputs.check(X)
        return check_matrix("X", X, n_cols=self.n_features, dtype=self.dtype, cols_name="features")

    def check_targets(self, name: str, Y, n_rows: int, allow_missing: bool = True) -> np.ndarray:
        """Y as (N, T) labels of the model's dtype (NaN = missing), checked for its tasks, or a clear
        error naming ``name``. ``fit`` and ``evaluate`` check labels here."""
        return check_targets(name, Y, self.tasks, n_rows=n_rows, dtype=self.dtype, allow_missing=allow_missing)

    def forward(self, X, check: bool = True) -> np.ndarray:
        """X: (N, D) -> scores (N, T): logits for binary tasks, values for regression tasks.

        In training mode (``train()``, the mode of a new model and of ``fit``) dropout is drawn and
        ``auxiliary_loss()`` holds the regularisers; ``predict`` always runs in evaluation mode.
        ``check=False`` skips the input checks, for callers (``fit``) that checked the data once."""
        if check:
            X = self.check_inputs(X)
        x = X if self.inputs is None else self.inputs.forward(X)                  # (N, D)
        tower_inputs = self.backbone_forward(x)                                   # T x (N, H)
        scores = np.concatenate([tower.forward(h) for tower, h in zip(self.towers, tower_inputs)], axis=1)
        self.rows_of_last_forward = len(scores)
        return scores                                                             # (N, T)

    def backward(self, dscores, input_grad: bool = True) -> np.ndarray | None:
        """dscores: (N, T), the loss gradient of the last ``forward``'s scores -> dX: (N, D); None with
        ``input_grad=False`` or for a model with an input layer (ids have no gradient).

        Linear in ``dscores``; parameter gradients are ADDED into ``grads`` (``zero_grad`` between
        steps). Regularisers are not included: ``backward_auxiliary()`` adds theirs.
        """
        dscores = self._checked_dscores(dscores)
        dtower_inputs = [tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(self.towers)]
        dx = self.backbone_backward(dtower_inputs, input_grad or self.inputs is not None)
        return self._input_backward(dx)

    def _checked_dscores(self, dscores) -> np.ndarray:
        """dscores as an (N, T) array of the model's dtype, N the rows of the last forward, or a clear error."""
        if self.rows_of_last_forward is None:
            raise RuntimeError("backward needs the forward pass just before it: call forward(X) first "
                               "(predict and gate_weights replace what forward kept)")
        dscores = np.asarray(dscores)
        if dscores.shape != (self.rows_of_last_forward, self.n_tasks):
            raise ValueError(f"dscores must have shape {(self.rows_of_last_forward, self.n_tasks)} "
                             f"(rows of the last forward, tasks), got {dscores.shape}")
        return dscores.astype(self.dtype, copy=False)

    def backward_auxiliary(self, input_grad: bool = True) -> np.ndarray | None:
        """Add the gradient of ``auxiliary_loss()`` (the load-balancing loss, in training mode) into
        ``grads``; return its d / dX (None without a regulariser, with ``input_grad=False``, or with an
        input layer). ``fit`` calls it once per step, after ``backward``."""
        return self._input_backward(self.backbone_backward_auxiliary(input_grad or self.inputs is not None))

    def _input_backward(self, dx):
        """Route d loss / d x into the input layer's embeddings (ids have no gradient: None)."""
        if self.inputs is None or dx is None:
            return dx
        self.inputs.backward(dx)
        return None

    # -- prediction -------------------------------------------------------------------------------
    def _row_batches(self, X):
        """Checked X in slices of at most PREDICT_BATCH rows (a FeatureBatch slices like an array)."""
        X = self.check_inputs(X)
        return (X[start:start + PREDICT_BATCH] for start in range(0, len(X), PREDICT_BATCH))

    def _in_evaluation(self, compute, X) -> list:
        """compute(batch) for every batch of X, in evaluation mode (restored afterwards); the caches of
        the last forward are then a prediction's, so backward is refused until the next forward."""
        with self.mode(training=False):
            results = [compute(batch) for batch in self._row_batches(X)]
        self.rows_of_last_forward = None
        return results

    def predict_scores(self, X) -> np.ndarray:
        """(N, T) raw scores (logits for binary tasks), in evaluation mode, in batches."""
        return np.concatenate(self._in_evaluation(lambda batch: self.forward(batch, check=False), X))

    def predict(self, X) -> np.ndarray:
        """(N, T): each task's prediction (probabilities for binary tasks, values for regression)."""
        scores = self.predict_scores(X)
        for k, task in enumerate(self.tasks):
            scores[:, k] = task.link(scores[:, k])
        return scores

    # -- what loss weighting and analysis need ----------------------------------------------------
    def backbone_reached_by(self, task: int) -> tuple[str, ...]:  # pragma: no cover - abstract
        """Name prefixes of the backbone's parameters that task ``task``'s loss reaches."""
        raise NotImplementedError

    def parameters_reached_by(self, task: int) -> list[str]:
        """Names of the parameters task ``task``'s loss reaches, read from the structure: the input
        layer, the parts of the backbone on the task's path, and its own tower."""
        prefixes = ("inputs.", f"towers.{task}.") + tuple(self.backbone_reached_by(task))
        return [name for name in self.params if name.startswith(prefixes)]

    def shared_parameters(self, last_layer: bool = False) -> list[str]:
        """Names of the parameters every task's loss reaches (with ``last_layer``: the weight of the
        last such layer, where GradNorm measures gradient norms)."""
        if last_layer:
            return self.last_shared_layer()
        every = set.intersection(*(set(self.parameters_reached_by(k)) for k in range(self.n_tasks)))
        return [name for name in self.params if name in every]

    def last_shared_layer(self) -> list[str]:  # pragma: no cover - abstract
        """The weight(s) of the last layer every task reaches (one per shared expert group)."""
        raise NotImplementedError

    def save(self, path) -> None:
        """Write architecture and parameters to ``path`` (.npz), atomically."""
        from .serialization import save_model
        save_model(self, path)

    def load_weights(self, path) -> None:
        """Load parameters saved from a model of the same architecture (checked before any change)."""
        from .serialization import load_weights
        load_weights(self, path)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class SharedBottom(MultiTaskModel):
    """y_k = h_k(f(x)): one shared MLP ``bottom`` (ReLU after every layer), one tower per task.

    ``bottom_units=()`` leaves the bottom out: the towers read the input (the embeddings and numeric
    features of an input layer, which is then all the tasks share, as in the ESMM paper).
    """

    def __init__(self, n_features: int | None, bottom_units=MMOE_PAPER.bottom_units,
                 tower_units=MMOE_PAPER.tower_units, tasks=("regression", "regression"), task_names=None,
                 seed=0, dtype=np.float64, init: str = "uniform", inputs=None) -> None:
        super().__init__(locals())
        bottom_units = check_units("bottom_units", bottom_units, allow_empty=True)
        self.bottom = MLP(self.n_features, bottom_units, self.rng, init=self.init, dtype=self.dtype) \
            if bottom_units else None
        self.make_towers(self.bottom.d_out if bottom_units else self.n_features, tower_units)

    def backbone_forward(self, x):
        shared = x if self.bottom is None else self.bottom.forward(x)             # (N, H)
        return [shared] * self.n_tasks                                            # T x (N, H), one array

    def backbone_backward(self, dtower_inputs, input_grad):
        if self.bottom is None:
            return sum(dtower_inputs) if input_grad else None                     # the towers read x itself
        return self.bottom.backward(sum(dtower_inputs), input_grad)              # every tower fans in

    def backbone_reached_by(self, task: int) -> tuple[str, ...]:
        return ("bottom.",)                                                       # every task reads the bottom

    def last_shared_layer(self) -> list[str]:
        if self.bottom is None:
            raise ValueError("a SharedBottom without a bottom (bottom_units=()) shares no layer")
        last = [name for name, module in self.bottom.named_modules("bottom.") if isinstance(module, Linear)][-1]
        return [f"{last}W"]


class IndependentModels(MultiTaskModel):
    """T single-task models side by side, sharing nothing, not even the input layer: score k is
    model k's (``models.<k>``, each a ``SharedBottom`` of ``bottom_units`` and ``tower_units``).

    With an input layer, model 0 takes it and every other model gets its own, of the same sizes.
    ESMM's ``backbone="none"`` (the paper's ESMM-NS) is two of them under the funnel head.
    """

    def __init__(self, n_features: int | None, bottom_units=(), tower_units=MMOE_PAPER.tower_units,
                 tasks=("regression", "regression"), task_names=None, seed=0, dtype=np.float64,
                 init: str = "uniform", inputs=None) -> None:
        super().__init__(locals())
        shared_input, self.inputs = self.inputs, None          # each model owns its input layer
        layers = [shared_input] + [None if shared_input is None else
                                   FeatureInput(**shared_input.config, seed=self.rng, dtype=self.dtype)
                                   for _ in range(self.n_tasks - 1)]
        self.models = ModuleList([SharedBottom(None if layer is not None else self.n_features, bottom_units,
                                               tower_units, (task,), seed=self.rng, dtype=self.dtype,
                                               init=self.init, inputs=layer)
                                  for task, layer in zip(self.tasks, layers)])

    def check_inputs(self, X):
        return self.models[0].check_inputs(X)

    def forward(self, X, check: bool = True) -> np.ndarray:
        if check:
            X = self.check_inputs(X)
        scores = np.concatenate([model.forward(X, check=False) for model in self.models], axis=1)   # (N, T)
        self.rows_of_last_forward = len(scores)
        return scores

    def backward(self, dscores, input_grad: bool = True) -> np.ndarray | None:
        dscores = self._checked_dscores(dscores)
        dxs = [model.backward(dscores[:, k:k + 1], input_grad) for k, model in enumerate(self.models)]
        return None if any(dx is None for dx in dxs) else sum(dxs)               # x fans out to every model

    def backward_auxiliary(self, input_grad: bool = True) -> None:
        return None

    def parameters_reached_by(self, task: int) -> list[str]:
        return [name for name in self.params if name.startswith(f"models.{task}.")]

    def last_shared_layer(self) -> list[str]:
        raise ValueError("IndependentModels share no layer")


class MixtureModel(MultiTaskModel):
    """A stack of ``MixtureLayer`` levels, then the towers.

    Level 0 reads one stream, x; level l + 1 reads level l's G mixtures as its streams; tower k reads
    mixture ``tower_streams[k]`` of the last level. Subclasses describe the levels (``level_specs``:
    a list of (expert groups, gates)) and call ``build_levels``.
    """

    def build_levels(self, level_specs, tower_streams, expert_units, gate_units, tower_units,
                     balance_weight: float, expert_dropout: float) -> None:
        levels, widths = [], [self.n_features]
        for groups, gates in level_specs:
            levels.append(MixtureLayer(widths, groups, gates, expert_units, gate_units, self.rng, init=self.init,
                                       dtype=self.dtype, balance_weight=balance_weight,
                                       expert_dropout=expert_dropout))
            widths = [levels[-1].units] * len(gates)
        self.levels = ModuleList(levels)
        self.tower_streams = list(tower_streams)
        self.make_towers(levels[-1].units, tower_units)

    # -- forward and backward ---------------------------------------------------------------------
    def backbone_forward(self, x):
        streams = [x]
        for level in self.levels:
            streams = level.forward(streams)                                      # (G, N, H)
        return [streams[s] for s in self.tower_streams]

    @staticmethod
    def _stack(grads) -> np.ndarray:
        """Stream gradients (a list, None where a stream got none) as one (G, N, H) array."""
        like = next(g for g in grads if g is not None)
        return np.stack([np.zeros_like(like) if g is None else g for g in grads])

    def backbone_backward(self, dtower_inputs, input_grad):
        top = self.levels[-1]
        if self.tower_streams == list(range(len(top.gate_specs))):
            dmixed = np.stack(dtower_inputs)                                      # (G, N, H), tower k <- gate k
        else:
            dmixed = np.zeros((len(top.gate_specs),) + dtower_inputs[0].shape, dtype=self.dtype)
            for k, stream in enumerate(self.tower_streams):
                dmixed[stream] += dtower_inputs[k]                                # OMoE: every tower reads gate 0
        for index in reversed(range(len(self.levels))):
            below = self.levels[index - 1] if index > 0 else None
            dstreams = self.levels[index].backward(dmixed, input_grad or below is not None)
            if below is None:
                return dstreams[0] if dstreams is not None else None
            dmixed = self._stack(dstreams)

    def backbone_backward_auxiliary(self, input_grad):
        """Each level's balancing gradient reaches its gates' inputs; from above level 0 it then
        flows down through the lower levels' (linear) backward passes to x."""
        from_above = None                                                         # (G, N, H) or None
        for index in reversed(range(len(self.levels))):
            level, need = self.levels[index], input_grad or index > 0
            dstreams = level.backward_auxiliary(need)
            if from_above is not None:
                through = level.backward(from_above, need)
                dstreams = through if dstreams is None else [add_gradients(d, t) for d, t in zip(dstreams, through)]
            if index == 0:
                return dstreams[0] if dstreams is not None else None
            from_above = None if dstreams is None else self._stack(dstreams)

    # -- structure, for loss weighting and analysis -----------------------------------------------
    def _level_index(self, level: int) -> int:
        if not isinstance(level, (int, np.integer)) or not -len(self.levels) <= level < len(self.levels):
            raise ValueError(f"level must be an int in [-{len(self.levels)}, {len(self.levels)}), got {level!r}")
        return int(level) % len(self.levels)

    def task_gates(self, level: int = -1) -> list[int]:
        """For each task, the index of the gate of ``level`` that is its own (``task<k>``), or the
        one it shares (``shared``) when the level has no gate of its own for it."""
        specs = [spec.name for spec in self.levels[self._level_index(level)].gate_specs]
        return [specs.index(f"task{k}") if f"task{k}" in specs else specs.index("shared")
                for k in range(self.n_tasks)]

    def _reaching_tasks(self) -> list[tuple[dict, dict]]:
        """Per level, ({group name: tasks}, {gate name: tasks}): which tasks' losses reach each
        expert group and gate, read from the levels' structure (towers -> gates -> groups -> streams)."""
        out_reach = {}                                    # gate index of the level above -> tasks
        for k, stream in enumerate(self.tower_streams):
            out_reach.setdefault(stream, set()).add(k)
        per_level = []
        for level in reversed(self.levels):
            gate_reach = {spec.name: out_reach.get(g, set()) for g, spec in enumerate(level.gate_specs)}
            group_reach = {group.name: set().union(*(gate_reach[spec.name] for spec in level.gate_specs
                                                     if group.name in spec.groups))
                           for group in level.groups}
            out_reach = {}
            for spec in level.gate_specs:
                out_reach.setdefault(spec.stream, set()).update(gate_reach[spec.name])
            for group in level.groups:
                out_reach.setdefault(group.stream, set()).update(group_reach[group.name])
            per_level.append((group_reach, gate_reach))
        return per_level[::-1]

    def backbone_reached_by(self, task: int) -> tuple[str, ...]:
        prefixes = []
        for index, (group_reach, gate_reach) in enumerate(self._reaching_tasks()):
            prefixes += [f"levels.{index}.experts.{name}." for name, tasks in group_reach.items() if task in tasks]
            prefixes += [f"levels.{index}.gates.{name}." for name, tasks in gate_reach.items() if task in tasks]
        return tuple(prefixes)

    def last_shared_layer(self) -> list[str]:
        everyone = set(range(self.n_tasks))
        reach = self._reaching_tasks()
        for index in reversed(range(len(self.levels))):
            groups = [name for name, tasks in reach[index][0].items() if tasks == everyone]
            if groups:
                last = len(self.levels[index].experts[groups[0]].units) - 1
                return [f"levels.{index}.experts.{name}.W{last}" for name in groups]
        raise ValueError(f"{type(self).__name__} has no expert group that every task reaches")

    def gate_weights(self, X, level: int = -1) -> np.ndarray:
        """(T, N, E): the weights task k's gate at ``level`` gives the level's E experts (evaluation
        mode), with exact zeros for experts the gate cannot see."""
        index = self._level_index(level)
        gates = self.task_gates(index)
        per_batch = self._in_evaluation(lambda batch: self._forward_to(batch, index).weights[gates], X)
        return np.concatenate(per_batch, axis=1)

    def expert_outputs(self, X, level: int = -1) -> np.ndarray:
        """(N, E, H): every expert's output at ``level`` on the rows of X (evaluation mode)."""
        index = self._level_index(level)
        return np.concatenate(self._in_evaluation(lambda batch: self._forward_to(batch, index).expert_out, X))

    def _forward_to(self, X, index: int) -> MixtureLayer:
        """Run the checked X through the input layer and levels 0..index; returns level ``index``."""
        streams = [X if self.inputs is None else self.inputs.forward(X)]
        for level in list(self.levels)[:index + 1]:
            streams = level.forward(streams)
        return self.levels[index]

    def expert_groups(self, level: int = -1) -> dict[str, np.ndarray]:
        """{group name: the indices of its experts among the E of ``level``} (``shared``,
        ``task<k>``): which columns of ``gate_weights`` and ``expert_outputs`` belong to which group."""
        return {name: columns.copy() for name, columns in self.levels[self._level_index(level)].group_columns.items()}

    @property
    def n_experts(self) -> int:
        """E of the last level (the experts the towers' mixtures are made of)."""
        return self.levels[-1].n_experts


class OMoE(MixtureModel):
    """One-gate Mixture-of-Experts: y_k = h_k(sum_i g_i(x) f_i(x)), one gate shared by all tasks.

    Options of both mixture models: ``gate_units`` puts hidden layers in the gates (the paper's
    gates are linear); ``balance_weight`` and ``expert_dropout`` are the two remedies for unused
    experts (``MixtureLayer``), active in training mode only.
    """

    def __init__(self, n_features: int | None, n_experts: int = MMOE_PAPER.n_experts,
                 expert_units=MMOE_PAPER.expert_units, tower_units=MMOE_PAPER.tower_units,
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(locals())
        groups = [ExpertGroup("shared", check_positive_int("n_experts", n_experts))]
        gates = [GateSpec("shared", ("shared",))]
        self.build_levels([(groups, gates)], [0] * self.n_tasks, expert_units, gate_units, tower_units,
                          balance_weight, expert_dropout)


class MMoE(MixtureModel):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): y_k = h_k(sum_i g_{k,i}(x) f_i(x)), one
    gate per task over the same E experts. Options as ``OMoE``."""

    def __init__(self, n_features: int | None, n_experts: int = MMOE_PAPER.n_experts,
                 expert_units=MMOE_PAPER.expert_units, tower_units=MMOE_PAPER.tower_units,
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(locals())
        groups = [ExpertGroup("shared", check_positive_int("n_experts", n_experts))]
        gates = [GateSpec(f"task{k}", ("shared",)) for k in range(self.n_tasks)]
        self.build_levels([(groups, gates)], list(range(self.n_tasks)), expert_units, gate_units, tower_units,
                          balance_weight, expert_dropout)


def _task_expert_counts(n_task_experts, n_tasks: int) -> list[int]:
    """One count of task-specific experts per task, from an int or a list of T ints (0 allowed)."""
    counts = [n_task_experts] * n_tasks if isinstance(n_task_experts, (int, np.integer)) else list(n_task_experts)
    if len(counts) != n_tasks:
        raise ValueError(f"n_task_experts must be an int or one count per task ({n_tasks}), got {n_task_experts!r}")
    for k, count in enumerate(counts):
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"n_task_experts[{k}] must be an int >= 0, got {count!r}")
    return [int(count) for count in counts]


def _extraction_specs(n_shared: int, task_counts: list[int], level: int, last: bool):
    """(expert groups, gates) of one extraction level (CGC is one, PLE stacks them).

    Group ``shared`` (if n_shared > 0) and ``task<k>`` (if task k has experts of its own); gate
    ``task<k>`` mixes ``shared`` and ``task<k>`` only; below the last level a gate ``shared`` mixes
    every group and makes the next level's shared stream. Level 0 reads one stream, x; above it,
    task k's group and gate read stream k and the shared ones read stream T.
    """
    n_tasks = len(task_counts)
    task_stream = (lambda k: 0) if level == 0 else (lambda k: k)
    shared_stream = 0 if level == 0 else n_tasks
    groups = ([ExpertGroup("shared", n_shared, shared_stream)] if n_shared else []) + [
        ExpertGroup(f"task{k}", count, task_stream(k)) for k, count in enumerate(task_counts) if count]
    present = {group.name for group in groups}
    gates = []
    for k in range(n_tasks):
        seen = tuple(name for name in ("shared", f"task{k}") if name in present)
        if not seen:
            raise ValueError(f"task {k} has no expert to mix: give it task experts or add shared experts")
        gates.append(GateSpec(f"task{k}", seen, task_stream(k)))
    if not last:
        gates.append(GateSpec("shared", tuple(group.name for group in groups), shared_stream))
    return groups, gates


def _check_shared_count(n_shared_experts) -> int:
    if isinstance(n_shared_experts, (bool, np.bool_)) or not isinstance(n_shared_experts, (int, np.integer)) \
            or n_shared_experts < 0:
        raise ValueError(f"n_shared_experts must be an int >= 0, got {n_shared_experts!r}")
    return int(n_shared_experts)


class ExtractionModel(MixtureModel):
    """What CGC and PLE share: extraction levels of task experts next to shared ones."""

    def build_extraction(self, *, n_levels: int, n_shared_experts, n_task_experts, expert_units, gate_units,
                         tower_units, balance_weight: float, expert_dropout: float) -> None:
        """``n_levels`` extraction levels (CGC: one) and the towers. The config records the
        effective expert counts: one per task."""
        n_shared = _check_shared_count(n_shared_experts)
        task_counts = _task_expert_counts(n_task_experts, self.n_tasks)
        self.config.update(n_shared_experts=n_shared, n_task_experts=task_counts)
        specs = [_extraction_specs(n_shared, task_counts, level, last=level == n_levels - 1)
                 for level in range(n_levels)]
        self.build_levels(specs, list(range(self.n_tasks)), expert_units, gate_units, tower_units,
                          balance_weight, expert_dropout)


class CGC(ExtractionModel):
    """Customized Gate Control (Tang et al., RecSys 2020), one extraction layer: task k has experts
    of its own S_k next to experts S_0 that every task shares, and its gate is a softmax over
    S_k and S_0 only,

        y_k = h_k(sum_{i in S_k + S_0} g_{k,i}(x) f_i(x)).

    ``n_shared_experts``: |S_0| (0 allowed); ``n_task_experts``: |S_k|, one int for every task or a
    list of T (0 allowed, but every task needs one expert to mix). With no task experts it is MMoE
    over the shared experts; with no shared experts and one expert per task it is T independent
    single-task models. Other options as ``OMoE`` (``gate_units``, ``balance_weight``,
    ``expert_dropout``).
    """

    def __init__(self, n_features: int | None, n_shared_experts: int = 2, n_task_experts=1,
                 expert_units=MMOE_PAPER.expert_units, tower_units=MMOE_PAPER.tower_units,
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(locals())
        self.build_extraction(n_levels=1, n_shared_experts=n_shared_experts, n_task_experts=n_task_experts,
                              expert_units=expert_units, gate_units=gate_units, tower_units=tower_units,
                              balance_weight=balance_weight, expert_dropout=expert_dropout)


class PLE(ExtractionModel):
    """Progressive Layered Extraction (Tang et al., RecSys 2020): ``n_levels`` CGC levels stacked.

    Each level reads T task streams and one shared stream (level 0 reads x for all of them): task
    k's experts and gate read stream k, the shared experts read the shared stream, and below the
    last level a shared gate over every expert of the level reads the shared stream and makes the
    next one. The towers read the last level's task mixtures. With one level it is CGC. Options as
    ``CGC``; every level has ``n_shared_experts`` and ``n_task_experts`` experts of
    ``expert_units``.
    """

    def __init__(self, n_features: int | None, n_levels: int = 2, n_shared_experts: int = 2, n_task_experts=1,
                 expert_units=MMOE_PAPER.expert_units, tower_units=MMOE_PAPER.tower_units,
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(locals())
        self.build_extraction(n_levels=check_positive_int("n_levels", n_levels), n_shared_experts=n_shared_experts,
                              n_task_experts=n_task_experts, expert_units=expert_units, gate_units=gate_units,
                              tower_units=tower_units, balance_weight=balance_weight, expert_dropout=expert_dropout)


class HeadedModel(MultiTaskModel):
    """A model whose trained scores are a ``head`` applied to the scores of a whole model ``base``
    (its input layer, backbone and towers): ESMM's product of a CTR and a CVR tower, say.

        X --base--> tower scores (N, T) --head--> scores (N, T)

    A subclass sets ``self.base`` and ``self.head`` in its constructor; forward, backward, the
    regulariser's call and the declared structure go through them. The head says which tower
    scores each of its outputs reads (``head.reads``: one tuple of base tasks per output).
    """

    def check_inputs(self, X):
        return self.base.check_inputs(X)

    def forward(self, X, check: bool = True) -> np.ndarray:
        if check:
            X = self.check_inputs(X)
        scores = self.head.forward(self.base.forward(X, check=False))              # (N, T)
        self.rows_of_last_forward = len(scores)
        return scores

    def backward(self, dscores, input_grad: bool = True) -> np.ndarray | None:
        return self.base.backward(self.head.backward(self._checked_dscores(dscores)), input_grad)

    def backward_auxiliary(self, input_grad: bool = True) -> np.ndarray | None:
        return self.base.backward_auxiliary(input_grad)

    def base_scores(self, X) -> np.ndarray:
        """(N, T) the base's tower scores, before the head (evaluation mode, in batches)."""
        return np.concatenate(self._in_evaluation(lambda batch: self.base.forward(batch, check=False), X))

    def parameters_reached_by(self, task: int) -> list[str]:
        """Head task ``task`` reaches every parameter of the base tasks its score reads
        (``head.reads[task]``): ESMM's CTCVR reaches the CTR tower too."""
        reached = set().union(*(self.base.parameters_reached_by(k) for k in self.head.reads[task]))
        return [f"base.{name}" for name in self.base.params if name in reached]

    def last_shared_layer(self) -> list[str]:
        """The last layer of a base tower that every head task reads (ESMM: the CTR tower), else the
        base's last shared layer."""
        common = set.intersection(*(set(reads) for reads in self.head.reads))
        if common:                           # the last weight on that task's path is its tower's output layer
            return [f"base.{[name for name in self.base.parameters_reached_by(min(common)) if name.endswith('W')][-1]}"]
        return [f"base.{name}" for name in self.base.last_shared_layer()]

    def gate_weights(self, X, level: int = -1) -> np.ndarray:
        """(T, N, E) for a mixture base: its towers' gates."""
        if not isinstance(self.base, MixtureModel):
            raise TypeError(f"{type(self).__name__} on a {type(self.base).__name__} has no gates")
        return self.base.gate_weights(X, level)

    def expert_outputs(self, X, level: int = -1) -> np.ndarray:
        if not isinstance(self.base, MixtureModel):
            raise TypeError(f"{type(self).__name__} on a {type(self.base).__name__} has no experts")
        return self.base.expert_outputs(X, level)


class ESMM(HeadedModel):
    """The Entire Space Multi-task Model (Ma et al., SIGIR 2018) for a funnel impression -> click ->
    conversion (or -> a watch time, a purchase).

    Two towers on a shared backbone give a CTR logit a and a CVR logit b; the ``FunnelHead`` turns
    them into the scores of the two tasks it is trained on, for EVERY impression:

        ctr    logit a,                            label: click
        ctcvr  logit of sigmoid(a) * sigmoid(b),   label: click and conversion

    The CVR tower never sees a conversion label: it learns pCVR only through pCTCVR = pCTR * pCVR,
    over the whole impression space, not only the clicked rows a plain CVR model trains on.
    ``predict`` gives (pCTR, pCTCVR); ``predict_cvr`` gives pCVR for any impression.

    The structure is the base model under the head, the child ``base`` (with the CTR and CVR towers
    and the input layer), chosen by ``backbone`` and built with ``backbone_options`` and
    ``tower_units``:

        "shared_bottom"  by default with ``bottom_units=()``: the paper's ESMM, where the two towers
                         share only the input layer (the embeddings, the paper's "lookup tables")
                         and read it directly; ``bottom_units=(64,)`` adds a shared bottom
        "none"           nothing shared, each tower with its own input layer: the paper's ESMM-NS
        "mmoe", "cgc", "ple"  the mixture backbones (``n_experts``, ``expert_units``, ``gate_units``,
                         ``n_shared_experts``, ``n_task_experts``, ``n_levels``, ...)
    """

    BACKBONES = {"shared_bottom": SharedBottom, "mmoe": MMoE, "cgc": CGC, "ple": PLE, "none": IndependentModels}

    def __init__(self, n_features: int | None, backbone: str = "shared_bottom", tower_units=(16,),
                 tasks=("binary", "binary"), task_names=("ctr", "ctcvr"), seed=0, dtype=np.float64,
                 init: str = "uniform", inputs=None, **backbone_options) -> None:
        if backbone not in self.BACKBONES:
            raise ValueError(f"backbone must be one of {tuple(self.BACKBONES)}, got {backbone!r}")
        names = make_tasks(tasks, task_names)
        if [task.kind for task in names] != ["binary", "binary"]:
            raise ValueError(f"ESMM's tasks are two binary ones (click, click and conversion), got {tasks!r}")
        if backbone in ("shared_bottom", "none"):
            backbone_options.setdefault("bottom_units", ())                      # the paper's: no shared bottom
        rng = make_rng(seed)
        base = self.BACKBONES[backbone](n_features, tower_units=tower_units, tasks=("binary", "binary"),
                                        task_names=(names[0].name, "cvr"), seed=rng, dtype=dtype, init=init,
                                        inputs=inputs, **backbone_options)
        # The input layer is the base's (one owner for its parameters); the backbone's sizes, its
        # defaults included, are ESMM's architecture too.
        super().__init__(dict(locals(), n_features=base.n_features, seed=rng, inputs=None))
        self.config.update({key: value for key, value in base.config.items() if key not in self.config})
        self.base = base
        self.head = FunnelHead()

    def check_targets(self, name: str, Y, n_rows: int, allow_missing: bool = True) -> np.ndarray:
        """(click, click and conversion) labels: also a clear error where the second is missing (it
        exists for every impression) or is 1 without a click."""
        Y = super().check_targets(name, Y, n_rows, allow_missing)
        missing = np.isnan(Y[:, 1])
        if missing.any():
            row = int(np.argmax(missing))
            raise ValueError(
                f"{name}[:, 1] ({self.task_names[1]}: click and conversion) is NaN at row {row} "
                f"({int(missing.sum())} of {len(Y)} rows). This label exists for every impression (0 without a "
                f"click); read as missing it would train the CTCVR task on the clicked rows only, the selection "
                f"bias ESMM removes. Build it from (click, conversion) with mm.data.esmm_labels(Y).")
        converted_without_click = (Y[:, 1] == 1) & (Y[:, 0] == 0)
        if converted_without_click.any():
            row = int(np.argmax(converted_without_click))
            raise ValueError(f"{name}[:, 1] (click and conversion) is 1 at row {row}, where {name}[:, 0] (the "
                             f"click) is 0: a conversion is only observed after a click")
        return Y

    def predict(self, X) -> np.ndarray:
        """(N, 2): pCTR and pCTCVR = pCTR x pCVR of every impression.

        Straight from the towers' logits: the head's log-space logit c exists for the loss, and a
        probability needs none of it (sigmoid(c) would cost five softplus per row where the product
        costs two sigmoids; the two agree to rounding)."""
        probabilities = sigmoid(self.base_scores(X))                              # (N, 2): pCTR, pCVR
        probabilities[:, 1] *= probabilities[:, 0]                                # pCTCVR = pCTR x pCVR
        return probabilities

    def predict_cvr(self, X) -> np.ndarray:
        """(N,) pCVR, the conversion probability of every impression had it been clicked."""
        return sigmoid(self.base_scores(X)[:, 1])


MODELS = {cls.__name__: cls for cls in (SharedBottom, OMoE, MMoE, CGC, PLE, ESMM)}
"""Every model class by name: the one registry that loading, the command line and the studies use."""
