"""Answers to the exercises of lesson 03 (Mixture-of-Experts). Each block replaces the exercise cell
that starts with the same "# EXERCISE <id>" line. Try the exercise before reading its answer."""

# EXERCISE 03.softmax_backward
def softmax_backward(y, dy):
    """The softmax's backward pass (its vector-Jacobian product), for every row at once.

    y:  (N, E) the softmax's outputs; every row sums to 1
    dy: (N, E) the upstream gradient dL/dy
    returns dz: (N, E), dL/dz for the logits z, every row on its own
    """
    # dz_j = sum_i dy_i y_i (delta_ij - y_j) = y_j dy_j - y_j <dy, y>
    inner = (dy * y).sum(axis=1, keepdims=True)        # (N, 1): <dy, y> for every row
    return y * (dy - inner)                            # (N, E)


# EXERCISE 03.gate_backward
def gate_backward(x, W1, b1, W, b, dg):
    """The backward pass of g = softmax(relu(x @ W1 + b1) @ W + b), a gate with one hidden layer.

    x: (N, D); W1: (D, U), b1: (U,): the hidden layer; W: (U, E), b: (E,): the output layer;
    dg: (N, E), dL/dg.
    returns a dict of gradients: {"W": (U, E), "b": (E,), "hidden.W": (D, U), "hidden.b": (U,),
                                  "dX": (N, D)}
    """
    a = x @ W1 + b1                                    # (N, U) the hidden layer's pre-activation
    h = np.maximum(a, 0.0)                             # (N, U)
    g = softmax(h @ W + b)                             # (N, E)
    dz = g * (dg - (dg * g).sum(axis=1, keepdims=True))   # (N, E): the softmax's backward
    dh = dz @ W.T                                      # (N, U)
    da = dh * (a > 0)                                  # (N, U): the ReLU's mask
    return {"W": h.T @ dz, "b": dz.sum(axis=0),        # (U, E), (E,)
            "hidden.W": x.T @ da, "hidden.b": da.sum(axis=0),   # (D, U), (U,)
            "dX": da @ W1.T}                           # (N, D)


# EXERCISE 03.mix
def mix(gates, experts):
    """The gated sum of the expert outputs, for every gate at once.

    gates:   (G, N, E) gate weights (G gates; OMoE has G = 1)
    experts: (N, E, H) the expert outputs
    returns  (G, N, H): out[g, n] = sum over i of gates[g, n, i] * experts[n, i]
    """
    return np.einsum("gne,neh->gnh", gates, experts)


# EXERCISE 03.mix_backward
def mix_backward(gates, experts, dmixed):
    """The gradients of mix for an upstream gradient dmixed: (G, N, H).

    gates: (G, N, E), experts: (N, E, H) as in mix
    returns (dgates, dexperts):
        dgates:   (G, N, E), dL/dgates
        dexperts: (N, E, H), dL/dexperts
    """
    # gate g's weight reaches its own mixture only; expert i's output reaches every gate's mixture
    dgates = np.einsum("neh,gnh->gne", experts, dmixed)      # F[n, i] . dM[g, n]
    dexperts = np.einsum("gne,gnh->neh", gates, dmixed)      # sum over g of G[g, n, i] dM[g, n]
    return dgates, dexperts


# EXERCISE 03.gate_entropy
def gate_entropy(G):
    """The entropy of every gate row, in nats.

    G: (N, E) gate weights; each row is non-negative and sums to 1, and may contain exact zeros
    returns (N,): -sum over i of G[n, i] * log G[n, i], with 0 log 0 taken as 0 (no NaN)
    """
    logs = np.log(np.where(G > 0, G, 1.0))           # log 1 = 0 wherever a weight is 0
    return -(G * logs).sum(axis=1)
