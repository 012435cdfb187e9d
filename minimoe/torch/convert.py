"""``to_torch`` and ``from_torch``: a minimoe model (or loss) as a ``torch.nn.Module`` with the same
structure, parameter names and values, and trained values back into minimoe.

The converter reads the minimoe model's structure (its blocks' sizes, expert groups, gates, tower
streams and options), builds the matching modules of ``models.py`` and ``blocks.py`` with empty
parameters, and then copies ``model.params`` into them BY NAME. That copy requires the two sets of
names to be identical, so the naming is checked on every conversion, not assumed.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .. import layers as mm_layers
from .. import losses as mm_losses
from .. import models as mm_models
from .. import weighting as mm_weighting
from ..heads import FunnelHead as NumpyFunnelHead
from ..inputs import FeatureInput as NumpyFeatureInput
from ..module import Module
from . import models as torch_models
from .blocks import FeatureInput, MixtureLayer
from .losses import MultiTaskLoss, UncertaintyWeightedLoss
from .models import ESMM, IndependentModels, MixtureModel, SharedBottom

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
SUPPORTED = ("SharedBottom", "OMoE", "MMoE", "CGC", "PLE", "ESMM", "IndependentModels")


class UnsupportedModelError(TypeError):
    """A model (or one of its parts) that ``to_torch`` has no PyTorch counterpart for."""


# -- reading minimoe's structure -----------------------------------------------------------------

def _mlp_shape(mlp: mm_layers.MLP, where: str) -> tuple[int, list[int], bool]:
    """(d_in, units, activate_last) of a minimoe MLP, read from its layers."""
    layers = list(mlp.layers)
    for module in layers:
        if not isinstance(module, (mm_layers.Linear, mm_layers.ReLU)):
            raise UnsupportedModelError(f"{where} holds a {type(module).__name__}; to_torch converts MLPs of "
                                        f"Linear and ReLU layers only")
    linears = [module for module in layers if isinstance(module, mm_layers.Linear)]
    units = [int(linear.params["W"].shape[1]) for linear in linears]
    return int(linears[0].params["W"].shape[0]), units, isinstance(layers[-1], mm_layers.ReLU)


def _tower_units(model) -> list[int]:
    """The hidden widths of the towers (every tower has the same; the last layer is the score)."""
    return _mlp_shape(model.towers[0], "towers.0")[1][:-1]


def _inputs(inputs: NumpyFeatureInput | None, dtype: torch.dtype) -> FeatureInput | None:
    if inputs is None:
        return None
    return FeatureInput(inputs.cardinalities, inputs.embedding_dims, inputs.n_numeric, dtype)


def _level(level, dtype: torch.dtype, where: str) -> MixtureLayer:
    """A minimoe MixtureLayer's sizes, groups, gates and options -> the torch MixtureLayer."""
    expert_units = next(iter(level.experts.values())).units
    gate_units = set()
    for name, gate in level.gates.items():
        gate_units.add(() if gate.hidden is None else tuple(_mlp_shape(gate.hidden, f"{where}.gates.{name}.hidden")[1]))
    if len(gate_units) != 1:
        raise UnsupportedModelError(f"{where}: gates with different hidden layers {sorted(gate_units)}; minimoe "
                                    f"builds every gate of a level alike")
    return MixtureLayer(level.stream_widths, level.groups, level.gate_specs, expert_units, gate_units.pop(),
                        level.balance_weight, level.dropout.rate, dtype)


# -- building the torch module -------------------------------------------------------------------

def _shared_bottom(model, dtype) -> SharedBottom:
    bottom_units = [] if model.bottom is None else _mlp_shape(model.bottom, "bottom")[1]
    return SharedBottom(_inputs(model.inputs, dtype), model.n_features, bottom_units, _tower_units(model),
                        model.n_tasks, dtype)


def _mixture_model(model, dtype) -> MixtureModel:
    """OMoE, MMoE, CGC or PLE: the torch class of the same name, with the model's levels."""
    levels = [_level(level, dtype, f"levels.{index}") for index, level in enumerate(model.levels)]
    cls = getattr(torch_models, type(model).__name__)
    return cls(_inputs(model.inputs, dtype), levels, model.tower_streams, _tower_units(model),
               model.levels[-1].units, dtype)


def _independent_models(model, dtype) -> IndependentModels:
    return IndependentModels([_shared_bottom(single, dtype) for single in model.models], dtype)


def _esmm(model, dtype) -> ESMM:
    if type(model.head) is not NumpyFunnelHead:
        raise UnsupportedModelError(f"ESMM with a {type(model.head).__name__} head: to_torch converts the funnel head")
    return ESMM(_build(model.base))


BUILDERS = {"SharedBottom": _shared_bottom, "OMoE": _mixture_model, "MMoE": _mixture_model, "CGC": _mixture_model,
            "PLE": _mixture_model, "IndependentModels": _independent_models, "ESMM": _esmm}


def _build(model) -> nn.Module:
    """The empty torch module for a minimoe model of exactly one of the supported classes (a
    subclass may compute something else, so it is refused rather than guessed at)."""
    name = type(model).__name__
    if name not in BUILDERS or getattr(mm_models, name, None) is not type(model):
        what = f"{name}, a HeadedModel (a head on a base model)" if isinstance(model, mm_models.HeadedModel) else name
        raise UnsupportedModelError(f"to_torch does not support {what}: it converts minimoe's "
                                    f"{', '.join(SUPPORTED)} (ESMM with the funnel head on any of its backbones)")
    module = BUILDERS[name](model, TORCH_DTYPES[np.dtype(model.dtype)])
    module.task_kinds = tuple(task.kind for task in model.tasks)            # for predict's links
    return module


def _loss(loss) -> MultiTaskLoss:
    """The torch loss for a minimoe loss: static weights, or learned log-variances (copied later,
    by name, like a model's parameters)."""
    kinds = [task.kind for task in loss.tasks]
    if type(loss) is mm_losses.MultiTaskLoss:
        return MultiTaskLoss(kinds, weights=np.array(loss.weights, dtype=np.float64))
    if type(loss) is mm_weighting.UncertaintyWeightedLoss:
        return UncertaintyWeightedLoss(kinds)
    raise UnsupportedModelError(f"to_torch does not support {type(loss).__name__}: it converts MultiTaskLoss and "
                                f"UncertaintyWeightedLoss (GradNorm adapts its weights with extra backward passes "
                                f"per task, which have no PyTorch counterpart here)")


# -- copying parameters by name ------------------------------------------------------------------

def _check_same_parameters(torch_shapes: dict, minimoe_shapes: dict, what: str) -> None:
    """A clear error naming every parameter that is missing on one side or has another shape."""
    missing = [name for name in minimoe_shapes if name not in torch_shapes]
    unexpected = [name for name in torch_shapes if name not in minimoe_shapes]
    shapes = [f"{name}: {tuple(torch_shapes[name])} vs {tuple(minimoe_shapes[name])}" for name in minimoe_shapes
              if name in torch_shapes and tuple(torch_shapes[name]) != tuple(minimoe_shapes[name])]
    problems = ([f"only the minimoe model has {missing}"] if missing else []) + \
               ([f"only the torch module has {unexpected}"] if unexpected else []) + \
               ([f"shapes differ (torch vs minimoe) for {shapes}"] if shapes else [])
    if problems:
        raise ValueError(f"{what}: the parameters do not match; " + "; ".join(problems) + ". Nothing was copied.")


def _config_mismatch(module: nn.Module, target) -> str | None:
    """Why the module was converted from a model of another class or configuration, or None."""
    source_class = getattr(module, "minimoe_class", None)
    if source_class is None:
        return None                                     # a module built by hand: names and shapes decide
    if source_class != type(target).__name__:
        return (f"the torch module was converted from a model of class {source_class}, "
                f"the target is a {type(target).__name__}")
    source, config = getattr(module, "minimoe_config", None), getattr(target, "config", None)
    if source is None or config is None:
        return None
    differing = sorted(key for key in set(source) | set(config) if source.get(key) != config.get(key))
    if differing:
        details = ", ".join(f"{key}: {source.get(key)!r} vs {config.get(key)!r}" for key in differing)
        return f"the configurations differ (converted from vs target) in {details}"
    return None


def to_torch(model) -> nn.Module:
    """A ``torch.nn.Module`` with the structure of ``model`` and a copy of its parameters.

    ``model``: a minimoe SharedBottom, OMoE, MMoE, CGC, PLE or ESMM (on any backbone, ESMM-NS's
    "none" included), with or without an input layer, gate hidden layers, expert dropout and load
    balancing; or a loss, ``MultiTaskLoss`` or ``UncertaintyWeightedLoss`` (its ``log_variance``
    becomes a parameter). ``dict(module.named_parameters())`` has exactly the keys of
    ``model.params``; the tensors have the model's dtype (float32 or float64) and shapes, and
    the module is in the model's mode (train or eval).

    The module's ``forward`` takes X: (N, D), or with an input layer the pair (ids (N, C) int64,
    numeric (N, M)) (``torch_inputs`` makes it), and returns the scores (N, T); in training mode it
    draws the expert dropout (``torch.rand``) and ``module.auxiliary_loss()`` then holds the
    load-balancing loss, to be added to the task loss. Scoring as minimoe's models (evaluation
    mode, no graph): ``module.predict_scores(x)``, ``module.predict(x)`` (probabilities for binary
    tasks; for ESMM (pCTR, pCTCVR)) and, for ESMM, ``module.predict_cvr(x)`` (pCVR) and
    ``module.base_scores(x)``, with ``x = torch_inputs(X, module)``. Raises
    ``UnsupportedModelError`` (a TypeError) naming a model class or part it cannot convert.
    """
    if isinstance(model, mm_losses.MultiTaskLoss):
        module = _loss(model)
    elif isinstance(model, Module):
        module = _build(model)
        module.minimoe_config = copy.deepcopy(model.config)
    else:
        raise TypeError(f"to_torch converts a minimoe model or loss, got {type(model).__name__}")
    module.minimoe_class = type(model).__name__
    params = model.params
    tensors = dict(module.named_parameters())
    _check_same_parameters({name: t.shape for name, t in tensors.items()},
                           {name: a.shape for name, a in params.items()}, f"to_torch({type(model).__name__})")
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(params[name])))
    return module.train(getattr(model, "training", True))


def from_torch(module: nn.Module, target):
    """Copy the parameters of ``module`` (made by ``to_torch``, and trained, say; a
    DistributedDataParallel wrapper is unwrapped) into the minimoe ``target``, in place, cast to
    the target's dtype; returns ``target``.

    The target must have the configuration the module was converted from (same class and config)
    and exactly the same parameter names and shapes. Everything is checked before anything is
    written: a ValueError names the mismatch and the target is left as it was.
    """
    inner = getattr(module, "module", None)
    if isinstance(inner, nn.Module) and isinstance(module, nn.parallel.DistributedDataParallel):
        module = inner
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch copies from a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(target, Module):
        raise TypeError(f"from_torch copies into a minimoe model or loss, got {type(target).__name__}")
    mismatch = _config_mismatch(module, target)
    if mismatch:
        raise ValueError(f"from_torch: {mismatch}. Copy into a model built with the same configuration, e.g. "
                         f"type(model)(**model.config). Nothing was copied.")
    tensors = dict(module.named_parameters())
    params = target.params
    _check_same_parameters({name: t.shape for name, t in tensors.items()},
                           {name: a.shape for name, a in params.items()}, f"from_torch into {type(target).__name__}")
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in tensors.items()}
    for name, array in arrays.items():
        params[name][...] = array                                   # in place, cast to the target's dtype
    return target


def torch_inputs(X, like=torch.float64):
    """minimoe inputs as the converted module's input: X (N, D) -> a tensor of the dtype of
    ``like``; a ``FeatureBatch`` -> (ids (N, C) int64, numeric (N, M) of that dtype).

    ``like``: a torch dtype, a converted module (its parameters' dtype) or a minimoe model.
    """
    if isinstance(X, (nn.Module, Module)):
        raise TypeError(f"torch_inputs(X, like) takes the inputs first, got a {type(X).__name__} as X; "
                        f"call torch_inputs(X, module_or_model)")
    if isinstance(like, nn.Module):
        dtype = next(like.parameters()).dtype
    elif isinstance(like, Module):
        dtype = TORCH_DTYPES[np.dtype(like.dtype)]
    else:
        dtype = like
    if hasattr(X, "categorical") and hasattr(X, "numeric"):
        return (torch.as_tensor(np.asarray(X.categorical), dtype=torch.long),
                torch.as_tensor(np.asarray(X.numeric), dtype=dtype))
    return torch.as_tensor(np.asarray(X), dtype=dtype)
