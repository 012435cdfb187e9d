"""Plausible wrong answers to the exercises of lesson 11; each must be rejected by its check."""
# ruff: noqa: F821

# MISTAKE 11.scatter_gate: the wrong dtype: np.zeros without dtype turns a float32 gate into float64 weights
# EXERCISE 11.scatter_gate
def scatter_gate(gate, columns, n_experts):
    full = np.zeros((gate.shape[0], n_experts))
    full[:, columns] = gate
    return full


def scatter_gate_backward(dfull, columns):
    return dfull[:, columns]


# MISTAKE 11.scatter_gate: the gate written into the first C columns instead of its own columns
# EXERCISE 11.scatter_gate
def scatter_gate(gate, columns, n_experts):
    full = np.zeros((gate.shape[0], n_experts), dtype=gate.dtype)
    full[:, :gate.shape[1]] = gate
    return full


def scatter_gate_backward(dfull, columns):
    return dfull[:, :len(columns)]


# MISTAKE 11.scatter_gate: the backward pass zeroes the hidden columns of dfull instead of gathering the visible ones
# EXERCISE 11.scatter_gate
def scatter_gate(gate, columns, n_experts):
    full = np.zeros((gate.shape[0], n_experts), dtype=gate.dtype)
    full[:, columns] = gate
    return full


def scatter_gate_backward(dfull, columns):
    dgate = np.zeros_like(dfull)
    dgate[:, columns] = dfull[:, columns]
    return dgate


# MISTAKE 11.scatter_gate: the backward pass scatters the gradient of the full width back to the first C columns
# EXERCISE 11.scatter_gate
def scatter_gate(gate, columns, n_experts):
    full = np.zeros((gate.shape[0], n_experts), dtype=gate.dtype)
    full[:, columns] = gate
    return full


def scatter_gate_backward(dfull, columns):
    return dfull[:, :len(columns)]


# MISTAKE 11.ple_backward: the shared gate skipped: only the task gates' backward is called
# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    dmixed = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)
        dstreams = [0.0] * len(level.stream_widths)
        for group in level.groups:
            dgroup = dexperts[:, level.group_columns[group.name]]
            dstreams[group.stream] = dstreams[group.stream] + level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs[:model.n_tasks]):      # the task gates only
            dgate = gather(dweights[g], level.gate_columns[g])
            dstreams[spec.stream] = dstreams[spec.stream] + level.gates[spec.name].backward(dgate)
        dmixed = np.stack(dstreams)
    return dmixed[0]


# MISTAKE 11.ple_backward: = instead of +=: a stream keeps only the gradient of its last reader
# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    dmixed = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)
        dstreams = [0.0] * len(level.stream_widths)
        for group in level.groups:
            dgroup = dexperts[:, level.group_columns[group.name]]
            dstreams[group.stream] = level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs):
            dgate = gather(dweights[g], level.gate_columns[g])
            dstreams[spec.stream] = level.gates[spec.name].backward(dgate)
        dmixed = np.stack(dstreams)
    return dmixed[0]


# MISTAKE 11.ple_backward: a gate handed its full row of dW (N, E) instead of its gathered columns (N, C)
# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    dmixed = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)
        dstreams = [0.0] * len(level.stream_widths)
        for group in level.groups:
            dgroup = dexperts[:, level.group_columns[group.name]]
            dstreams[group.stream] = dstreams[group.stream] + level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs):
            dstreams[spec.stream] = dstreams[spec.stream] + level.gates[spec.name].backward(dweights[g])
        dmixed = np.stack(dstreams)
    return dmixed[0]


# MISTAKE 11.ple_backward: every gate's gradient sent to stream 0 (x's place) instead of the stream the gate reads
# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    dmixed = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)
        dstreams = [0.0] * len(level.stream_widths)
        for group in level.groups:
            dgroup = dexperts[:, level.group_columns[group.name]]
            dstreams[group.stream] = dstreams[group.stream] + level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs):
            dgate = gather(dweights[g], level.gate_columns[g])
            dstreams[0] = dstreams[0] + level.gates[spec.name].backward(dgate)
        dmixed = np.stack([d if not np.isscalar(d) else np.zeros_like(dstreams[0]) for d in dstreams])
    return dmixed[0]


# MISTAKE 11.ple_backward: a tower handed dscores[:, k], a 1-D column, instead of dscores[:, k:k + 1]
# EXERCISE 11.ple_backward
def ple_backward(model, dscores):
    dmixed = np.stack([tower.backward(dscores[:, k]) for k, tower in enumerate(model.towers)])
    for level in reversed(model.levels):
        dweights, dexperts = mix_backward(level.weights, level.expert_out, dmixed)
        dstreams = [0.0] * len(level.stream_widths)
        for group in level.groups:
            dgroup = dexperts[:, level.group_columns[group.name]]
            dstreams[group.stream] = dstreams[group.stream] + level.experts[group.name].backward(dgroup)
        for g, spec in enumerate(level.gate_specs):
            dgate = gather(dweights[g], level.gate_columns[g])
            dstreams[spec.stream] = dstreams[spec.stream] + level.gates[spec.name].backward(dgate)
        dmixed = np.stack(dstreams)
    return dmixed[0]


# MISTAKE 11.group_shares: the mean of a group's columns instead of their sum
# EXERCISE 11.group_shares
def group_shares(usage, groups):
    return np.stack([usage[:, columns].mean(axis=1) for columns in groups.values()], axis=1)


# MISTAKE 11.group_shares: one row per group instead of one row per task (stacked on the wrong axis)
# EXERCISE 11.group_shares
def group_shares(usage, groups):
    return np.stack([usage[:, columns].sum(axis=1) for columns in groups.values()])
