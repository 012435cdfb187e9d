"""minimoe's building blocks as ``torch.nn.Module``s: the same forward pass, the same parameter
names and layouts, and no backward pass (autograd derives it).

Each block mirrors the minimoe block of the same name (``layers.py``, ``inputs.py``, ``moe.py``,
``heads.py``) and takes the same sizes. Parameters are created empty here; ``convert.py`` copies
the minimoe arrays into them. Notation: N rows, D features, E experts, H units, G gates.
"""

from __future__ import annotations

import torch
from torch import nn

from ..moe import ExpertGroup, GateSpec


class Linear(nn.Module):
    """y = x @ W + b with minimoe's layout, W: (D_in, D_out), b: (D_out,) (``nn.Linear`` stores the
    transpose under the name ``weight``, which would break the names and the shapes)."""

    def __init__(self, d_in: int, d_out: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.empty(d_in, d_out, dtype=dtype))
        self.b = nn.Parameter(torch.empty(d_out, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (N, D_in) -> (N, D_out)
        return x @ self.W + self.b

    def extra_repr(self) -> str:
        return f"W: {tuple(self.W.shape)}, b: {tuple(self.b.shape)}"


class MLP(nn.Module):
    """Linear layers of widths ``units`` with ReLU between them (and after the last one with
    ``activate_last``), held in ``layers`` so that parameters read ``layers.0.W``, ``layers.2.W``."""

    def __init__(self, d_in: int, units, activate_last: bool, dtype: torch.dtype) -> None:
        super().__init__()
        modules = []
        for index, width in enumerate(units):
            modules.append(Linear(d_in, width, dtype))
            if activate_last or index < len(units) - 1:
                modules.append(nn.ReLU())
            d_in = width
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Embedding(nn.Module):
    """ids: (N,) -> W[ids]: (N, dim); W: (num_embeddings, dim). Autograd adds the rows' gradients of
    a repeated id, as minimoe's ``np.add.at`` does."""

    def __init__(self, num_embeddings: int, dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.empty(num_embeddings, dim, dtype=dtype))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.W[ids]

    def extra_repr(self) -> str:
        return f"W: {tuple(self.W.shape)}"


class FeatureInput(nn.Module):
    """(categorical ids (N, C), numeric (N, M)) -> x = [E_0[ids[:, 0]], ..., numeric]: (N, D)."""

    def __init__(self, cardinalities, embedding_dims, n_numeric: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList([Embedding(c, d, dtype) for c, d in zip(cardinalities, embedding_dims)])
        self.n_numeric, self.dtype = n_numeric, dtype

    def forward(self, batch) -> torch.Tensor:
        ids, numeric = batch                                                  # (N, C) int64, (N, M)
        blocks = [embedding(ids[:, i]) for i, embedding in enumerate(self.embeddings)]
        blocks.append(numeric.to(self.dtype))
        return torch.cat(blocks, dim=1)                                       # (N, D)


class Experts(nn.Module):
    """E expert MLPs (ReLU after every layer) as stacked tensors: x (N, D) -> (N, E, H).
    Layer l has ``W{l}``: (E, D_l, D_{l+1}) and ``b{l}``: (E, D_{l+1})."""

    def __init__(self, d_in: int, n_experts: int, units, dtype: torch.dtype) -> None:
        super().__init__()
        self.n_layers = len(units)
        for layer, width in enumerate(units):
            setattr(self, f"W{layer}", nn.Parameter(torch.empty(n_experts, d_in, width, dtype=dtype)))
            setattr(self, f"b{layer}", nn.Parameter(torch.empty(n_experts, width, dtype=dtype)))
            d_in = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.einsum("nd,edh->neh", x, self.W0) + self.b0)                 # (N, E, H_0)
        for layer in range(1, self.n_layers):
            W, b = getattr(self, f"W{layer}"), getattr(self, f"b{layer}")
            h = torch.relu(torch.einsum("neh,ehk->nek", h, W) + b)                       # (N, E, H_l)
        return h

    def extra_repr(self) -> str:
        return ", ".join(f"W{layer}: {tuple(getattr(self, f'W{layer}').shape)}" for layer in range(self.n_layers))


class Gate(nn.Module):
    """g(x) = softmax(h(x) @ W + b): (N, D) -> (N, E), h the identity or an MLP ``hidden`` of widths
    ``gate_units`` with ReLU after each layer."""

    def __init__(self, d_in: int, n_experts: int, gate_units, dtype: torch.dtype) -> None:
        super().__init__()
        self.hidden = MLP(d_in, gate_units, activate_last=True, dtype=dtype) if gate_units else None
        d_hidden = gate_units[-1] if gate_units else d_in
        self.W = nn.Parameter(torch.empty(d_hidden, n_experts, dtype=dtype))
        self.b = nn.Parameter(torch.empty(n_experts, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.hidden is None else self.hidden(x)                     # (N, D_h)
        return torch.softmax(h @ self.W + self.b, dim=-1)                    # (N, E), rows sum to 1

    def extra_repr(self) -> str:
        return f"W: {tuple(self.W.shape)}, b: {tuple(self.b.shape)}"


class ExpertDropout(nn.Module):
    """minimoe's dropout on gate weights (G, N, E): in training mode expert i is dropped for row n
    in every gate at once with probability ``rate`` (one draw per (n, i), shared over the G gates)
    and the kept weights are scaled by 1 / (1 - rate); in evaluation mode it is the identity.

    ``frozen_mask`` (a (1, N, E) tensor), when set, is used instead of a fresh draw: a parity test
    puts minimoe's mask there so that both frameworks drop the same experts.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)
        self.frozen_mask = None

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return weights
        mask = self.frozen_mask
        if mask is None:
            keep = torch.rand((1,) + tuple(weights.shape[1:]), device=weights.device) >= self.rate
            mask = keep.to(weights.dtype) / (1.0 - self.rate)
        return weights * mask

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def balance_loss(gate: torch.Tensor) -> torch.Tensor:
    """The squared coefficient of variation of expert importance for one gate, gate: (N, C) -> ():
    var_i(importance) / mean_i(importance)^2 with importance_i = sum_n gate[n, i] (population
    variance), as ``minimoe.moe.balance_loss``."""
    importance = gate.sum(dim=0)                                             # (C,)
    return importance.var(correction=0) / importance.mean() ** 2


class MixtureLayer(nn.Module):
    """Expert groups and gates over subsets of them, S input streams -> (G, N, H) mixtures, as
    ``minimoe.moe.MixtureLayer`` (same arguments): group j (``experts.<name>``) reads stream s_j,
    gate g (``gates.<name>``) reads stream s_g and is a softmax over its groups' experts only,
    written into the full width E with exact zeros for the others.

    In training mode, ``balance`` holds balance_weight * sum over gates of ``balance_loss`` of the
    last forward (None when not balancing), and the expert dropout is drawn.
    """

    def __init__(self, stream_widths, groups: list[ExpertGroup], gates: list[GateSpec], expert_units,
                 gate_units, balance_weight: float, expert_dropout: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.groups, self.gate_specs = list(groups), list(gates)
        self.experts = nn.ModuleDict({group.name: Experts(stream_widths[group.stream], group.n_experts,
                                                          expert_units, dtype) for group in self.groups})
        sizes = {group.name: group.n_experts for group in self.groups}
        starts, start = {}, 0
        for group in self.groups:                    # the layer's E experts: the groups side by side
            starts[group.name], start = start, start + group.n_experts
        self.n_experts = start
        # Gate g's experts in the layer's order, (C_g,) column indices into the E experts.
        columns = [sorted(starts[name] + i for name in spec.groups for i in range(sizes[name]))
                   for spec in self.gate_specs]
        for g, gate_columns in enumerate(columns):
            self.register_buffer(f"columns{g}", torch.tensor(gate_columns, dtype=torch.long), persistent=False)
        self.gates = nn.ModuleDict({spec.name: Gate(stream_widths[spec.stream], len(gate_columns), gate_units, dtype)
                                    for spec, gate_columns in zip(self.gate_specs, columns)})
        self.dropout = ExpertDropout(expert_dropout)
        self.balance_weight = float(balance_weight)
        self.balance = None

    def forward(self, streams) -> torch.Tensor:
        """streams: S tensors (N, D_s) (a list, or the (G, N, H) mixtures of the level below)."""
        outputs = [self.experts[group.name](streams[group.stream]) for group in self.groups]
        experts = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)          # (N, E, H)
        gates = [self.gates[spec.name](streams[spec.stream]) for spec in self.gate_specs]  # G x (N, C_g)
        weights = torch.stack([self._full_width(gate, getattr(self, f"columns{g}"))
                               for g, gate in enumerate(gates)])                          # (G, N, E)
        balancing = self.training and self.balance_weight > 0
        self.balance = self.balance_weight * sum(balance_loss(gate) for gate in gates) if balancing else None
        mixing = self.dropout(weights)
        return torch.einsum("gne,neh->gnh", mixing, experts)                              # (G, N, H)

    def extra_repr(self) -> str:
        groups = ", ".join(f"{group.name}: {group.n_experts} reading stream {group.stream}" for group in self.groups)
        return f"experts ({groups}), balance_weight={self.balance_weight}"

    def _full_width(self, gate: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (N, E): the gate in its columns, exact zeros (constants) elsewhere."""
        if gate.shape[1] == self.n_experts:
            return gate                                   # a gate over every expert: columns 0..E-1
        return gate.new_zeros(gate.shape[0], self.n_experts).index_copy(1, columns, gate)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) exactly for any finite x (``torch.nn.functional.softplus`` returns x itself
    above its threshold of 20, an error of up to 2e-9)."""
    return torch.logaddexp(x, torch.zeros_like(x))


class FunnelHead(nn.Module):
    """ESMM's head, (N, 2) logits (a, b) of pCTR and pCVR -> (N, 2) logits (a, c) with
    c = logit(sigmoid(a) sigmoid(b)) computed in log space (``minimoe.heads``):

        log p = -softplus(-a) - softplus(-b),   log(1 - p) = logaddexp(-softplus(a), -softplus(-a) - softplus(b))
    """

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        a, b = logits[:, 0], logits[:, 1]
        log_p = -softplus(-a) - softplus(-b)
        log_not_p = torch.logaddexp(-softplus(a), -softplus(-a) - softplus(b))
        return torch.stack([a, log_p - log_not_p], dim=1)                    # (N, 2)
