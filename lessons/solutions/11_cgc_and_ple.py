"""Answers to the exercises of lesson 11 (11_cgc_and_ple.ipynb), one block per exercise."""
# ruff: noqa: F821  (each block replaces a notebook cell: np and the lesson's own names come from the notebook)

# EXERCISE 11.scatter_gate
def scatter_gate(gate, columns, n_experts):
    """A gate over a subset of the experts, written into the full width.

    gate: (N, C), softmax rows over the C visible experts; columns: (C,) their indices among the
    n_experts (increasing). Returns (N, n_experts): gate[:, j] in column columns[j], exact zeros in
    every other column, with the dtype of gate.
    """
    full = np.zeros((gate.shape[0], n_experts), dtype=gate.dtype)    # (N, E), the hidden experts stay 0
    full[:, columns] = gate                                          # W = G P: column j goes to columns[j]
    return full


def scatter_gate_backward(dfull, columns):
    """The backward pass of scatter_gate: dfull (N, n_experts), the gradient of the full weights.
    Returns dgate: (N, C), the gradient of the C visible columns' gate weights."""
    return dfull[:, columns]                                         # dG = dW P^T: gather; the zeros were constants


# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    """The backward pass of a PLE (no expert dropout, no balancing), right after model.forward(X).

    dscores: (N, T), d loss / d scores. Returns dX: (N, D). The blocks' backward calls add every
    parameter gradient into model.grads.
    """
    # Tower k reads mixture k of the top level (model.tower_streams is 0 .. T-1 in a PLE).
    dmixed = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])  # (T, N, H)
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)   # (G, N, E), (N, E, H)
        dstreams = [0.0] * len(level.stream_widths)                  # one gradient per input stream, summed
        for group in level.groups:                                   # each group sends its experts' share
            dgroup = dexperts[:, level.group_columns[group.name]]    # (N, n_j, H)
            dstreams[group.stream] = dstreams[group.stream] + level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs):                  # each gate sends its visible columns
            dgate = gather(dweights[g], level.gate_columns[g])       # (N, C_g)
            dstreams[spec.stream] = dstreams[spec.stream] + level.gates[spec.name].backward(dgate)
        dmixed = np.stack(dstreams)                                  # (S, N, D_s): the dM of the level below
    return dmixed[0]                                                 # level 0 read one stream, x


# EXERCISE 11.group_shares
def group_shares(usage, groups):
    """usage: (T, E), each task's mean gate weight per expert; groups: {group name: (n_j,) columns}.
    Returns (T, len(groups)): column j = the sum of usage over the columns of the j-th group."""
    return np.stack([usage[:, columns].sum(axis=1) for columns in groups.values()], axis=1)
