"""Plausible wrong answers to lesson 03's exercises; the lesson's check cells must reject each one
(tests/test_lessons.py). Each block: a "# MISTAKE <id>: <what is wrong>" line, then the cell."""

# MISTAKE 03.softmax_backward: the Jacobian's diagonal only, y (1 - y) dy, as for a sigmoid
# EXERCISE 03.softmax_backward
def softmax_backward(y, dy):
    return y * (1.0 - y) * dy


# MISTAKE 03.softmax_backward: the factor y missing: dy - <dy, y>
# EXERCISE 03.softmax_backward
def softmax_backward(y, dy):
    return dy - (dy * y).sum(axis=1, keepdims=True)


# MISTAKE 03.softmax_backward: <dy, y> summed down the rows (axis 0) instead of within each row
# EXERCISE 03.softmax_backward
def softmax_backward(y, dy):
    return y * (dy - (dy * y).sum(axis=0, keepdims=True))


# MISTAKE 03.gate_backward: the softmax's Jacobian as its diagonal only
# EXERCISE 03.gate_backward
def gate_backward(x, W1, b1, W, b, dg):
    a = x @ W1 + b1
    h = np.maximum(a, 0.0)
    g = softmax(h @ W + b)
    dz = g * (1.0 - g) * dg
    da = (dz @ W.T) * (a > 0)
    return {"W": h.T @ dz, "b": dz.sum(axis=0), "hidden.W": x.T @ da, "hidden.b": da.sum(axis=0),
            "dX": da @ W1.T}


# MISTAKE 03.gate_backward: the hidden layer's ReLU mask forgotten
# EXERCISE 03.gate_backward
def gate_backward(x, W1, b1, W, b, dg):
    a = x @ W1 + b1
    h = np.maximum(a, 0.0)
    g = softmax(h @ W + b)
    dz = g * (dg - (dg * g).sum(axis=1, keepdims=True))
    da = dz @ W.T
    return {"W": h.T @ dz, "b": dz.sum(axis=0), "hidden.W": x.T @ da, "hidden.b": da.sum(axis=0),
            "dX": da @ W1.T}


# MISTAKE 03.gate_backward: dX stops at the hidden layer (dz W^T, never through W1)
# EXERCISE 03.gate_backward
def gate_backward(x, W1, b1, W, b, dg):
    a = x @ W1 + b1
    h = np.maximum(a, 0.0)
    g = softmax(h @ W + b)
    dz = g * (dg - (dg * g).sum(axis=1, keepdims=True))
    da = (dz @ W.T) * (a > 0)
    return {"W": h.T @ dz, "b": dz.sum(axis=0), "hidden.W": x.T @ da, "hidden.b": da.sum(axis=0),
            "dX": dz @ W.T}


# MISTAKE 03.mix: the gate axis dropped (one gate assumed): returns (N, H)
# EXERCISE 03.mix
def mix(gates, experts):
    return np.einsum("ne,neh->nh", gates[0], experts)


# MISTAKE 03.mix: a mean over the experts instead of the gated sum
# EXERCISE 03.mix
def mix(gates, experts):
    return (gates[:, :, :, None] * experts[None]).mean(axis=2)


# MISTAKE 03.mix_backward: no sum over gates: only gate 0's mixture reaches the experts
# EXERCISE 03.mix_backward
def mix_backward(gates, experts, dmixed):
    dgates = np.einsum("neh,gnh->gne", experts, dmixed)
    dexperts = gates[0][:, :, None] * dmixed[0][:, None, :]
    return dgates, dexperts


# MISTAKE 03.mix_backward: the experts' gradient averaged over the gates instead of summed
# EXERCISE 03.mix_backward
def mix_backward(gates, experts, dmixed):
    dgates = np.einsum("neh,gnh->gne", experts, dmixed)
    dexperts = np.einsum("gne,gnh->neh", gates, dmixed) / gates.shape[0]
    return dgates, dexperts


# MISTAKE 03.mix_backward: every gate's gradient from all the mixtures (summed over g) instead of its own
# EXERCISE 03.mix_backward
def mix_backward(gates, experts, dmixed):
    dgates = np.broadcast_to(np.einsum("neh,gnh->ne", experts, dmixed), gates.shape)
    dexperts = np.einsum("gne,gnh->neh", gates, dmixed)
    return dgates, dexperts


# MISTAKE 03.gate_entropy: G * log(G) as it stands: 0 * log 0 = 0 * -inf = nan at the zero weights
# EXERCISE 03.gate_entropy
def gate_entropy(G):
    return -(G * np.log(G)).sum(axis=1)


# MISTAKE 03.gate_entropy: log base 2 (bits) where the lesson uses nats
# EXERCISE 03.gate_entropy
def gate_entropy(G):
    return -(G * np.log2(np.where(G > 0, G, 1.0))).sum(axis=1)


# MISTAKE 03.gate_entropy: the minus sign forgotten
# EXERCISE 03.gate_entropy
def gate_entropy(G):
    return (G * np.log(np.where(G > 0, G, 1.0))).sum(axis=1)
