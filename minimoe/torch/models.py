"""minimoe's models as ``torch.nn.Module``s, built from the blocks of ``blocks.py``:

    X --inputs--> x (N, D) --backbone--> T tower inputs (N, H) --towers--> scores (N, T)

``SharedBottom``, ``MixtureModel`` (its subclasses ``OMoE``, ``MMoE``, ``CGC`` and ``PLE`` differ only in
the levels they are given: a stack of ``MixtureLayer`` levels),
``IndependentModels`` (ESMM-NS's backbone) and ``ESMM`` (a base model under the funnel head). The
attribute names are minimoe's (``inputs``, ``bottom``, ``levels``, ``towers``, ``models``,
``base``, ``head``), so the parameter names are too.

The input is a tensor X: (N, D), or for a model with an input layer the pair (categorical ids
(N, C) int64, numeric (N, M)); ``convert.torch_inputs`` makes either from minimoe's inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import MLP, FeatureInput, FunnelHead, MixtureLayer


def auxiliary_loss(module: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """The regularisers of the last forward below ``module``: the load-balancing terms of its
    mixture layers (training mode only), a () tensor, 0 when there are none."""
    terms = [layer.balance for layer in module.modules()
             if isinstance(layer, MixtureLayer) and layer.balance is not None]
    return sum(terms, torch.zeros((), dtype=dtype))


class Predicting:
    """minimoe's scoring methods on a converted model: in evaluation mode (the module's mode is
    restored afterwards) and without recording a graph. ``task_kinds`` ("binary" or "regression"
    per task) is set by ``to_torch``."""

    task_kinds: tuple = ()

    def predict_scores(self, X) -> torch.Tensor:
        """(N, T) raw scores: logits for binary tasks, values for regression tasks."""
        return self._evaluated(self, X)

    def predict(self, X) -> torch.Tensor:
        """(N, T) predictions: probabilities (the sigmoid of the logit) for binary tasks, values for
        regression tasks; for ESMM (pCTR, pCTCVR)."""
        scores = self.predict_scores(X)
        binary = [k for k, kind in enumerate(self.task_kinds) if kind == "binary"]
        scores[:, binary] = torch.sigmoid(scores[:, binary])
        return scores

    def _evaluated(self, module: nn.Module, X) -> torch.Tensor:
        training = self.training
        try:
            self.eval()
            with torch.no_grad():
                return module(X)
        finally:
            self.train(training)


class MultiTaskModel(Predicting, nn.Module):
    """The optional input layer, the towers (one MLP per task ending in one score) and the public
    forward; a subclass sets its backbone between the two and implements ``tower_inputs``."""

    def __init__(self, inputs: FeatureInput | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.inputs, self.dtype = inputs, dtype

    def make_towers(self, d_in: int, tower_units, n_tasks: int) -> None:
        units = tuple(tower_units) + (1,)
        self.towers = nn.ModuleList([MLP(d_in, units, activate_last=False, dtype=self.dtype) for _ in range(n_tasks)])

    def tower_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, X) -> torch.Tensor:
        """X: (N, D), or (ids (N, C), numeric (N, M)) with an input layer -> scores (N, T): logits for
        binary tasks, values for regression tasks."""
        x = X if self.inputs is None else self.inputs(X)                     # (N, D)
        return torch.cat([tower(h) for tower, h in zip(self.towers, self.tower_inputs(x))], dim=1)

    def auxiliary_loss(self) -> torch.Tensor:
        """The load-balancing loss of the last forward in training mode (0 without one), to be added
        to the task loss as minimoe's ``fit`` does."""
        return auxiliary_loss(self, self.dtype)


class SharedBottom(MultiTaskModel):
    """y_k = h_k(f(x)); without a bottom (``bottom_units=()``) the towers read x itself."""

    def __init__(self, inputs, n_features: int, bottom_units, tower_units, n_tasks: int, dtype) -> None:
        super().__init__(inputs, dtype)
        self.bottom = MLP(n_features, bottom_units, activate_last=True, dtype=dtype) if bottom_units else None
        self.make_towers(bottom_units[-1] if bottom_units else n_features, tower_units, n_tasks)

    def tower_inputs(self, x):
        shared = x if self.bottom is None else self.bottom(x)                 # (N, H)
        return [shared] * len(self.towers)


class MixtureModel(MultiTaskModel):
    """A stack of mixture levels (level l + 1 reads level l's G mixtures as its streams), then tower
    k on mixture ``tower_streams[k]`` of the last level: OMoE, MMoE, CGC and PLE."""

    def __init__(self, inputs, levels: list[MixtureLayer], tower_streams, tower_units, expert_width: int,
                 dtype) -> None:
        super().__init__(inputs, dtype)
        self.levels = nn.ModuleList(levels)
        self.tower_streams = list(tower_streams)
        self.make_towers(expert_width, tower_units, len(self.tower_streams))

    def tower_inputs(self, x):
        streams = [x]
        for level in self.levels:
            streams = level(streams)                                          # (G, N, H)
        return [streams[s] for s in self.tower_streams]


class OMoE(MixtureModel):
    """One gate shared by every task."""


class MMoE(MixtureModel):
    """One gate per task over the same experts."""


class CGC(MixtureModel):
    """Task experts next to shared ones; task k's gate mixes its own and the shared experts."""


class PLE(MixtureModel):
    """CGC levels stacked, with a shared gate below the top level."""


class IndependentModels(Predicting, nn.Module):
    """T single-task ``SharedBottom`` models side by side (``models.<k>``), each with its own input
    layer: score k is model k's."""

    def __init__(self, models: list[SharedBottom], dtype) -> None:
        super().__init__()
        self.models, self.dtype = nn.ModuleList(models), dtype

    def forward(self, X) -> torch.Tensor:
        return torch.cat([model(X) for model in self.models], dim=1)         # (N, T)

    def auxiliary_loss(self) -> torch.Tensor:
        return auxiliary_loss(self, self.dtype)


class ESMM(Predicting, nn.Module):
    """The funnel head on a whole base model: (a, b) tower logits -> (a, logit(pCTR pCVR)).

    Scoring, as minimoe's ESMM (evaluation mode, no graph): ``predict(X)`` (N, 2) is (pCTR,
    pCTCVR), ``predict_cvr(X)`` (N,) is pCVR, ``base_scores(X)`` (N, 2) the tower logits (a, b).
    """

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base, self.head = base, FunnelHead()

    def forward(self, X) -> torch.Tensor:
        return self.head(self.base(X))                                        # (N, 2)

    def base_scores(self, X) -> torch.Tensor:
        """(N, 2) the CTR and CVR towers' logits (a, b), before the head."""
        return self._evaluated(self.base, X)

    def predict(self, X) -> torch.Tensor:
        """(N, 2) pCTR = sigmoid(a) and pCTCVR = pCTR sigmoid(b), from the towers' logits as minimoe's
        ESMM.predict computes them (the head's log-space logit serves the loss only)."""
        a, b = self.base_scores(X).unbind(dim=1)
        p_ctr = torch.sigmoid(a)
        return torch.stack([p_ctr, p_ctr * torch.sigmoid(b)], dim=1)

    def predict_cvr(self, X) -> torch.Tensor:
        """(N,) pCVR = sigmoid(b), the conversion probability of every impression had it been clicked."""
        return torch.sigmoid(self.base_scores(X)[:, 1])

    def auxiliary_loss(self) -> torch.Tensor:
        return self.base.auxiliary_loss()
