"""Mixture-of-Experts pieces: all experts of a group as one batched module, a softmax gate, the
mixture, the load-balancing loss on the gates, and ``MixtureLayer``, the block that OMoE, MMoE, CGC
and every level of PLE are configurations of.

Notation: N rows, D input features, E experts, H units of an expert's last layer, G gates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_dtype, check_number, check_positive_int, check_units, make_rng
from .initializers import check_init, init_bias, init_weight
from .layers import MLP, Dropout, Softmax
from .module import Module, ModuleDict, add_gradients, expect_shape


class Experts(Module):
    """E expert MLPs (ReLU after every layer) held as stacked arrays and run as batched tensor ops.

    x: (N, D) -> (N, E, H) with H = units[-1]. Layer l has ``W{l}``: (E, D_l, D_{l+1}) and
    ``b{l}``: (E, D_{l+1}); ``W{l}[i]`` is expert i's weight. The first layer of all experts is one
    matrix product of x with W0 laid out as a (D, E * H_0) matrix (``tensordot`` makes that copy);
    deeper layers are one batched matmul over the expert axis. No Python loop runs over experts.
    """

    def __init__(self, d_in: int, n_experts: int, units, seed=0, init: str = "uniform",
                 dtype=np.float64) -> None:
        super().__init__()
        d_in = check_positive_int("d_in", d_in)
        self.n_experts = check_positive_int("n_experts", n_experts)
        self.units = check_units("expert_units", units)
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.n_layers = len(self.units)
        for layer, width in enumerate(self.units):
            # Each expert is initialised exactly as its own Linear(d_in, width) would be.
            self.add_param(f"W{layer}", init_weight(rng, (self.n_experts, d_in, width), d_in, init, dtype))
            self.add_param(f"b{layer}", init_bias(rng, (self.n_experts, width), d_in, init, dtype))
            d_in = width

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W_l, b_l)] of every layer: this group's own (live) arrays."""
        return [(self._params[f"W{layer}"], self._params[f"b{layer}"]) for layer in range(self.n_layers)]

    def pre_activation(self, layer: int, h: np.ndarray) -> np.ndarray:
        """z = h W_l + b_l of every expert at ``layer``: h is x (N, D) for layer 0, else (N, E, H_{l-1})
        -> (N, E, H_l). A new array, so the caller may apply ReLU in place."""
        return _pre_activation(*self.layers()[layer], h, layer)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.keep(*experts_forward(self.layers(), x))
        return self.outputs[-1]                                           # (N, E, H)

    def keep(self, inputs: list, outputs: list) -> None:
        """What backward needs: the input of each layer, (N, D) then (N, E, H_l), and each layer's
        output after its ReLU (backward reads the ReLU masks off them, so a prediction builds none).
        A ``MixtureLayer`` that ran this group inside a larger stack hands it its share here."""
        self.inputs, self.outputs = inputs, outputs

    def backward(self, dh: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # dh: (N, E, H)
        expect_shape(self, "dh", dh, self.outputs[-1].shape)
        gradients, dx = experts_backward(self.layers(), self.inputs, self.outputs, dh, input_grad)
        self.add_layer_gradients(gradients)
        return dx

    def add_layer_gradients(self, gradients: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Add [(dW_l, db_l)] of every layer into this group's gradients."""
        for layer, (dW, db) in enumerate(gradients):
            self._grads[f"W{layer}"] += dW
            self._grads[f"b{layer}"] += db


def _pre_activation(W: np.ndarray, b: np.ndarray, h: np.ndarray, layer: int) -> np.ndarray:
    if layer == 0:
        z = np.tensordot(h, W, axes=(1, 1))                               # (N, E, H_0)
    else:
        z = np.matmul(h.transpose(1, 0, 2), W).transpose(1, 0, 2)          # (N, E, H_l)
    z += b                                                                # b: (E, H_l) broadcasts over N
    return z


def experts_forward(layers: list, x: np.ndarray) -> tuple[list, list]:
    """Experts with the layers [(W_l (E, D_l, H_l), b_l (E, H_l))] on x (N, D) -> (the input of
    each layer, each layer's output after its ReLU); the last output is (N, E, H)."""
    inputs, outputs, h = [x], [], x
    for layer, (W, b) in enumerate(layers):
        h = _pre_activation(W, b, h, layer)
        np.maximum(h, 0, out=h)                                           # ReLU in place
        outputs.append(h)
        if layer + 1 < len(layers):
            inputs.append(h)
    return inputs, outputs


def experts_backward(layers: list, inputs: list, outputs: list, dh: np.ndarray,
                     input_grad: bool) -> tuple[list, np.ndarray | None]:
    """([(dW_l, db_l)] of every layer, dx (N, D) or None) for the upstream dh: (N, E, H)."""
    gradients = [None] * len(layers)
    for layer in reversed(range(len(layers))):
        W = layers[layer][0]
        dz = dh * (outputs[layer] > 0)                                    # (N, E, H_l)
        h_in = inputs[layer]
        if layer == 0:
            # dW0[e] = x^T dz[:, e, :], all experts in one product: (D, E, H_0) -> (E, D, H_0)
            gradients[0] = (np.tensordot(h_in, dz, axes=(0, 0)).transpose(1, 0, 2), dz.sum(axis=0))
            dh = np.tensordot(dz, W, axes=((1, 2), (0, 2))) if input_grad else None   # (N, D), summed over experts
        else:
            dz_e = dz.transpose(1, 0, 2)                                  # (E, N, H_l)
            gradients[layer] = (np.matmul(h_in.transpose(1, 2, 0), dz_e), dz.sum(axis=0))  # (E, H_{l-1}, H_l)
            dh = np.matmul(dz_e, W.transpose(0, 2, 1)).transpose(1, 0, 2)     # (N, E, H_{l-1})
    return gradients, dh


class Gate(Module):
    """g(x) = softmax(W_g h(x) + b_g): a distribution over E experts for every row.

    x: (N, D) -> (N, E). h is the identity, or an MLP of widths ``gate_units`` (ReLU after each
    layer) named ``hidden``. Parameters: ``W``: (D or gate_units[-1], E), ``b``: (E,).
    """

    def __init__(self, d_in: int, n_experts: int, gate_units=(), seed=0, init: str = "uniform",
                 dtype=np.float64) -> None:
        super().__init__()
        d_in, n_experts = check_positive_int("d_in", d_in), check_positive_int("n_experts", n_experts)
        gate_units = check_units("gate_units", gate_units, allow_empty=True)
        self.n_experts = n_experts
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.hidden = None
        if gate_units:
            self.hidden = MLP(d_in, gate_units, rng, init=init, dtype=dtype)
            d_in = gate_units[-1]
        self.add_param("W", init_weight(rng, (d_in, n_experts), d_in, init, dtype))
        self.add_param("b", init_bias(rng, (n_experts,), d_in, init, dtype))
        self.softmax = Softmax()

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.h = x if self.hidden is None else self.hidden.forward(x)   # (N, D_h)
        return self.h @ self._params["W"] + self._params["b"]            # (N, E)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.softmax.forward(self.logits(x))                      # (N, E), rows sum to 1

    def backward(self, dg: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # dg: (N, E)
        expect_shape(self, "dg", dg, self.softmax.y.shape)
        dlogits = self.softmax.backward(dg)                               # (N, E)
        self._grads["W"] += self.h.T @ dlogits                            # (D_h, E)
        self._grads["b"] += dlogits.sum(axis=0)                           # (E,)
        if self.hidden is None:
            return dlogits @ self._params["W"].T if input_grad else None  # (N, D)
        return self.hidden.backward(dlogits @ self._params["W"].T, input_grad)


def mix(gates: np.ndarray, experts: np.ndarray) -> np.ndarray:
    """The gated sum of expert outputs, for every gate at once.

    gates: (G, N, E), experts: (N, E, H) -> (G, N, H), out[g, n] = sum_i gates[g, n, i] experts[n, i].
    Per row n this is the small product gates[:, n] (G, E) @ experts[n] (E, H); ``matmul`` over the
    stack of N rows runs it three to four times faster than the equivalent ``einsum``.
    """
    return np.matmul(gates.transpose(1, 0, 2), experts).transpose(1, 0, 2)


def mix_backward(gates: np.ndarray, experts: np.ndarray, dmixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``mix`` for an upstream dmixed: (G, N, H).

    d gates[g, n, i] = experts[n, i] . dmixed[g, n]                  -> (G, N, E)
    d experts[n, i]  = sum_g gates[g, n, i] dmixed[g, n]  (every gate -> (N, E, H) fans in)
    """
    dgates = np.matmul(experts, dmixed.transpose(1, 2, 0)).transpose(2, 0, 1)    # (N, E, G) -> (G, N, E)
    if gates.shape[0] == 1:
        # One gate: an outer product per row; matmul with an inner dimension of 1 is slow.
        dexperts = gates[0][:, :, None] * dmixed[0][:, None, :]
    else:
        dexperts = np.matmul(gates.transpose(1, 2, 0), dmixed.transpose(1, 0, 2))  # (N, E, G) @ (N, G, H)
    return dgates, dexperts


def balance_loss(gates: np.ndarray) -> float:
    """Load balance of the gates: sum over gates of the squared coefficient of variation of expert
    importance (Shazeer et al., 2017, "Outrageously Large Neural Networks"),

        importance[g, i] = sum_n gates[g, n, i],    CV^2_g = var_i(importance[g]) / mean_i(importance[g])^2

    with the population variance over the E experts. It is 0 when every expert gets the same total
    weight and E - 1 when one expert gets all of it; it does not depend on the batch size.
    gates: (G, N, E) -> a float.
    """
    importance = gates.sum(axis=1)                                        # (G, E)
    mean = importance.mean(axis=1)                                        # (G,)
    return float((importance.var(axis=1) / mean ** 2).sum())


def balance_loss_backward(gates: np.ndarray) -> np.ndarray:
    """d balance_loss / d gates: (G, N, E), the same for every row n of a gate.

    With m = mean_i importance_i and v = var_i importance_i (both over E experts),
        d CV^2 / d importance_i = 2 (importance_i - m) / (E m^2) - 2 v / (E m^3).
    (For softmax gates the importances sum to N, so the second term is the same for every expert
    and the softmax Jacobian removes it; it is kept so the function is right for any input.)
    """
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)                                        # (G, E)
    mean = importance.mean(axis=1, keepdims=True)                          # (G, 1)
    variance = importance.var(axis=1, keepdims=True)                       # (G, 1)
    dimportance = 2.0 * (importance - mean) / (n_experts * mean ** 2) - 2.0 * variance / (n_experts * mean ** 3)
    return np.broadcast_to(dimportance[:, None, :], gates.shape).astype(gates.dtype)   # (G, N, E)


def scatter_gate(gate: np.ndarray, columns: np.ndarray, n_experts: int) -> np.ndarray:
    """A gate over a subset of the experts, written into the full width with exact zeros elsewhere.

    gate: (N, C), a softmax over the C experts ``columns`` (indices into the layer's E experts, in
    increasing order) -> (N, E). The mixture then treats every gate alike: ``mix`` of the full
    weights gives the same sum as mixing the C visible experts alone.
    """
    full = np.zeros((gate.shape[0], n_experts), dtype=gate.dtype)
    full[:, columns] = gate
    return full


def scatter_gate_backward(dfull: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Gradient of ``scatter_gate``: dfull (N, E) -> dgate (N, C). The zeros written for the unseen
    experts are constants, so their gradient goes nowhere; the visible columns pass theirs back."""
    return dfull[:, columns]


@dataclass(frozen=True)
class ExpertGroup:
    """``n_experts`` experts, named ``name`` (``shared``, ``task0``, ...), that read input stream
    ``stream`` of their layer."""

    name: str
    n_experts: int
    stream: int = 0


@dataclass(frozen=True)
class GateSpec:
    """A gate named ``name`` (``task0``, ``shared``, ...) that reads input stream ``stream`` and is a
    softmax over the experts of the groups named in ``groups``."""

    name: str
    groups: tuple
    stream: int = 0


class MixtureLayer(Module):
    """Experts in groups and gates over subsets of them: S input streams -> G mixtures.

    streams: S arrays (N, D_s) (a list, or a (S, N, D) array) -> mixed: (G, N, H).

    - Expert group j is one ``Experts`` module (``experts.<name>``) of n_j experts, all reading stream
      s_j. Laid side by side in the order of ``groups``, the groups give the layer's E experts,
      (N, E, H).
    - Gate g (``gates.<name>``) reads stream s_g and is a softmax over the experts of its groups only.
      ``scatter_gate`` writes it into row g of the weights (G, N, E), with exact zeros for the experts
      it cannot see, so one ``mix`` serves every configuration:

          mixed[g] = sum_i weights[g, :, i] * experts[:, i]

    The configurations the models use:

        OMoE   one group ``shared``; one gate ``shared`` over it
        MMoE   one group ``shared``; T gates ``task<k>`` over it
        CGC    groups ``shared``, ``task0`` ... ``task<T-1>``; gate ``task<k>`` over ``shared`` + ``task<k>``
        PLE    CGC per level, plus (below the last level) a gate ``shared`` over every group; above
               level 0, group and gate ``task<k>`` read stream k and ``shared`` reads stream T

    Two remedies for unused experts act only in training mode: ``balance_weight`` w makes
    ``auxiliary_loss()`` w * sum over gates of the load-balancing loss of the gate's own softmax
    (``balance_loss``), and ``expert_dropout`` r drops each expert for each row with probability r,
    in every gate at once, and scales the kept weights by 1 / (1 - r) (so a row's weights no longer
    sum to exactly 1; they do in expectation).
    """

    def __init__(self, stream_widths, groups, gates, expert_units, gate_units=(), seed=0,
                 init: str = "uniform", dtype=np.float64, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__()
        self.stream_widths = [check_positive_int(f"stream_widths[{i}]", w) for i, w in enumerate(stream_widths)]
        self.groups, self.gate_specs = tuple(groups), tuple(gates)
        self._check_structure()
        self.balance_weight = check_number("balance_weight", balance_weight, allow_zero=True)
        if not 0.0 <= float(expert_dropout) < 1.0:
            raise ValueError(f"expert_dropout must lie in [0, 1), got {expert_dropout}")
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.experts = ModuleDict({group.name: Experts(self.stream_widths[group.stream], group.n_experts,
                                                       expert_units, rng, init=init, dtype=dtype)
                                   for group in self.groups})
        self.units = check_units("expert_units", expert_units)[-1]            # H
        offsets = np.cumsum([0] + [group.n_experts for group in self.groups])
        self.group_columns = {group.name: np.arange(offsets[j], offsets[j + 1])
                              for j, group in enumerate(self.groups)}
        self.n_experts = int(offsets[-1])                                       # E
        # Each gate's experts in the layer's order: (C_g,) column indices into the E experts.
        self.gate_columns = [np.sort(np.concatenate([self.group_columns[name] for name in spec.groups]))
                             for spec in self.gate_specs]
        self.gates = ModuleDict({spec.name: Gate(self.stream_widths[spec.stream], len(columns), gate_units, rng,
                                                 init=init, dtype=dtype)
                                 for spec, columns in zip(self.gate_specs, self.gate_columns)})
        self.every_gate_sees_all = all(len(columns) == self.n_experts for columns in self.gate_columns)
        # Consecutive groups that read the same stream (CGC's and PLE's level 0: the shared group and
        # every task's) run as ONE stack of experts, one matrix product per layer instead of one
        # per group: larger products, which BLAS runs faster and spreads over more threads.
        self.stacks = []                                  # [(stream, [group names])], in the groups' order
        for group in self.groups:
            if self.stacks and self.stacks[-1][0] == group.stream:
                self.stacks[-1][1].append(group.name)
            else:
                self.stacks.append((group.stream, [group.name]))
        # The dropout draws from the generator only in training passes, after every weight was drawn,
        # so a layer's initial weights do not depend on whether it uses dropout.
        self.dropout = Dropout(expert_dropout, seed=rng, shared_axes=(0,))
        self.balancing = False

    def _check_structure(self) -> None:
        names = [group.name for group in self.groups]
        if not self.groups or len(set(names)) != len(names):
            raise ValueError(f"groups must be one or more expert groups with distinct names, got {names}")
        for group in self.groups:
            check_positive_int(f"n_experts of group {group.name!r}", group.n_experts)
            self._check_stream(f"group {group.name!r}", group.stream)
        gate_names = [spec.name for spec in self.gate_specs]
        if not self.gate_specs or len(set(gate_names)) != len(gate_names):
            raise ValueError(f"gates must be one or more gates with distinct names, got {gate_names}")
        for spec in self.gate_specs:
            self._check_stream(f"gate {spec.name!r}", spec.stream)
            unknown = [name for name in spec.groups if name not in names]
            if not spec.groups or unknown:
                raise ValueError(f"gate {spec.name!r} must mix one or more of the groups {names}, got {spec.groups}")
        unseen = [name for name in names if not any(name in spec.groups for spec in self.gate_specs)]
        if unseen:
            raise ValueError(f"expert groups {unseen} are read by no gate: their experts could never train")

    def _check_stream(self, what: str, stream) -> None:
        if not (isinstance(stream, (int, np.integer)) and 0 <= stream < len(self.stream_widths)):
            raise ValueError(f"{what} reads stream {stream!r}, "
                             f"but the layer has streams 0..{len(self.stream_widths) - 1}")

    # -- forward ------------------------------------------------------------------------------
    def _stack_layers(self, names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W_l, b_l)] of the groups ``names`` laid side by side along the expert axis (copies: the
        groups keep their own arrays)."""
        per_group = [self.experts[name].layers() for name in names]
        return [tuple(np.concatenate(arrays, axis=0) for arrays in zip(*layer)) for layer in zip(*per_group)]

    def _run_stack(self, names: list[str], x: np.ndarray) -> np.ndarray:
        """The experts of the groups ``names``, which read x, as one stack: (N, E_stack, H). Each
        group is handed its share of the stack's caches for its backward and for the checks that
        read them."""
        if len(names) == 1:
            return self.experts[names[0]].forward(x)
        layers = self._stack_layers(names)
        inputs, outputs = experts_forward(layers, x)
        self.stack_caches[names[0]] = (layers, inputs, outputs)          # what _stack_backward needs
        start = 0
        for name in names:
            part = slice(start, start + self.experts[name].n_experts)
            self.experts[name].keep([x] + [h[:, part] for h in inputs[1:]], [h[:, part] for h in outputs])
            start = part.stop
        return outputs[-1]

    def _stack_backward(self, names: list[str], dh: np.ndarray, input_grad: bool):
        """Backward of ``_run_stack``: one product per layer, each group's share of the gradients
        added into it; the gradient of the stack's input (None with ``input_grad=False``)."""
        if len(names) == 1:
            return self.experts[names[0]].backward(dh, input_grad)
        gradients, dx = experts_backward(*self.stack_caches[names[0]], dh, input_grad)
        start = 0
        for group in (self.experts[name] for name in names):
            part = slice(start, start + group.n_experts)
            group.add_layer_gradients([(dW[part], db[part]) for dW, db in gradients])
            start = part.stop
        return dx

    def forward(self, streams) -> np.ndarray:
        self.stack_caches = {}
        outputs = [self._run_stack(names, streams[stream]) for stream, names in self.stacks]
        self.expert_out = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)  # (N, E, H)
        self.gate_out = [self.gates[spec.name].forward(streams[spec.stream]) for spec in self.gate_specs]
        if self.every_gate_sees_all:
            self.weights = np.stack(self.gate_out)                                # (G, N, E)
        else:
            self.weights = np.stack([scatter_gate(gate, columns, self.n_experts)
                                     for gate, columns in zip(self.gate_out, self.gate_columns)])
        self.balancing = self.training and self.balance_weight > 0
        self.balance = (self.balance_weight * sum(balance_loss(gate[None]) for gate in self.gate_out)
                        if self.balancing else 0.0)
        self.mixing = self.dropout.forward(self.weights)                          # (G, N, E)
        return mix(self.mixing, self.expert_out)                                  # (G, N, H)

    def auxiliary_loss(self) -> float:
        return self.balance + super().auxiliary_loss()

    # -- backward -----------------------------------------------------------------------------
    def _gates_backward(self, dgates, streams_grad: list, input_grad: bool) -> None:
        """dgates: G arrays (N, C_g), one per gate; adds each gate's input gradient to its stream."""
        for spec, dgate in zip(self.gate_specs, dgates):
            streams_grad[spec.stream] = add_gradients(streams_grad[spec.stream],
                                                       self.gates[spec.name].backward(dgate, input_grad))

    def backward(self, dmixed: np.ndarray, input_grad: bool = True) -> list | None:
        """dmixed: (G, N, H) -> the gradient of each input stream, S arrays (N, D_s) (None with
        ``input_grad=False``). Fan-outs: every expert feeds G mixtures (``mix_backward`` sums them),
        and a stream feeds the expert groups and gates that read it (summed here)."""
        expect_shape(self, "dmixed", dmixed, (len(self.gate_specs),) + self.expert_out.shape[::2])
        dweights, dexperts = mix_backward(self.mixing, self.expert_out, dmixed)   # (G, N, E), (N, E, H)
        dweights = self.dropout.backward(dweights)
        streams_grad = [None] * len(self.stream_widths)
        for stream, names in self.stacks:
            first, last = self.group_columns[names[0]][0], self.group_columns[names[-1]][-1]
            dstack = dexperts if len(self.stacks) == 1 else dexperts[:, first:last + 1]
            streams_grad[stream] = add_gradients(streams_grad[stream], self._stack_backward(names, dstack, input_grad))
        if self.every_gate_sees_all:
            dgates = list(dweights)
        else:
            dgates = [scatter_gate_backward(dweights[g], columns) for g, columns in enumerate(self.gate_columns)]
        self._gates_backward(dgates, streams_grad, input_grad)
        return streams_grad if input_grad else None

    def backward_auxiliary(self, input_grad: bool = True) -> list | None:
        """Add the load-balancing loss's gradient (from the last training forward) into the gates'
        parameters; return its gradient for each input stream (None when not balancing, or with
        ``input_grad=False``)."""
        if not self.balancing:
            return None
        dgates = [self.balance_weight * balance_loss_backward(gate[None])[0] for gate in self.gate_out]
        streams_grad = [None] * len(self.stream_widths)
        self._gates_backward(dgates, streams_grad, input_grad)
        return streams_grad if input_grad else None
