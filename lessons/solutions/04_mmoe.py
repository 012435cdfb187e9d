"""Answers to the exercises of lesson 04 (MMoE). Each block replaces the exercise cell that starts
with the same "# EXERCISE <id>" line. Try the exercise before reading its answer."""

# EXERCISE 04.mmoe_backward
def mmoe_backward(model, cache, dscores):
    """MMoE's backward pass, run after `scores, cache = mmoe_forward(model, X)`.

    model:   an MMoE; its blocks are model.towers[k], model.levels[0].experts["shared"] and
             model.levels[0].gates[f"task{k}"]. Each block's backward(d_out) returns the gradient of
             its input and adds its parameters' gradients into model.grads.
    cache:   (G, F) from mmoe_forward: the gate weights (T, N, E) and the expert outputs (N, E, H)
    dscores: (N, T), dL/dscores
    returns  dX: (N, D), dL/dX
    """
    G, F = cache
    layer = model.levels[0]
    experts = layer.experts["shared"]
    gates = [layer.gates[f"task{k}"] for k in range(model.n_tasks)]
    # Tower k reads mixture k only, so its input gradient is dM_k.
    dM = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])  # (T, N, H)
    # Gate k hears its own mixture; every expert hears all T mixtures (the sum over k is inside).
    dG, dF = moe.mix_backward(G, F, dM)                      # (T, N, E), (N, E, H)
    # x feeds the experts and every gate: their input gradients add up.
    dX = experts.backward(dF)                                # (N, D)
    for k, gate in enumerate(gates):
        dX = dX + gate.backward(dG[k])                       # (N, D)
    return dX


# EXERCISE 04.experts_backward
def experts_backward(x, W0, b0, W1, b1, dF):
    """The backward pass of E stacked experts with two ReLU layers: for every expert i,
    A = x @ W0[i] + b0[i], H = relu(A), Z = H @ W1[i] + b1[i], F[:, i] = relu(Z).

    x: (N, D); W0: (E, D, H0), b0: (E, H0); W1: (E, H0, H), b1: (E, H); dF: (N, E, H), dL/dF.
    returns a dict of gradients: {"W1": (E, H0, H), "b1": (E, H), "W0": (E, D, H0), "b0": (E, H0),
                                  "dX": (N, D)}
    No Python loop over the experts: use np.tensordot, np.matmul or np.einsum.
    """
    A = np.tensordot(x, W0, axes=(1, 1)) + b0                             # (N, E, H0)
    H = np.maximum(A, 0.0)                                                # (N, E, H0)
    Z = np.einsum("nea,eab->neb", H, W1) + b1                             # (N, E, H)
    dZ = dF * (Z > 0)                                                     # (N, E, H)
    dW1 = np.einsum("nea,neb->eab", H, dZ)                                # (E, H0, H): sum over the rows
    dH = np.einsum("neb,eab->nea", dZ, W1)                                # (N, E, H0): each expert's own W1
    dA = dH * (A > 0)                                                     # (N, E, H0)
    dW0 = np.tensordot(x, dA, axes=(0, 0)).transpose(1, 0, 2)             # (D, E, H0) -> (E, D, H0)
    dX = np.tensordot(dA, W0, axes=((1, 2), (0, 2)))                      # (N, D): x feeds every expert
    return {"W1": dW1, "b1": dZ.sum(axis=0), "W0": dW0, "b0": dA.sum(axis=0), "dX": dX}


# EXERCISE 04.three_tasks
def three_task_mmoe(X_train, Y_train, lr, seed=0):
    """An MMoE with a third regression task, y0 + y1, trained briefly.

    X_train: (N, D); Y_train: (N, 2), the targets y0 and y1
    returns (model, Y3_train): Y3_train (N, 3) holds y0, y1 and y0 + y1; model is an MMoE with
        8 experts of 16 units, towers (8,) and three regression tasks, trained on (X_train,
        Y3_train) for 5 epochs with Adam(lr) and batches of 128, with `seed` for the model and
        the batch order
    """
    Y3_train = np.column_stack([Y_train, Y_train[:, 0] + Y_train[:, 1]])          # (N, 3)
    model = mm.MMoE(X_train.shape[1], n_experts=8, expert_units=(16,), tower_units=(8,),
                    tasks=("regression", "regression", "regression"), seed=seed)
    mm.fit(model, X_train, Y3_train, epochs=5, batch_size=128, optimizer=mm.Adam(lr=lr), seed=seed,
           progress=False)
    return model, Y3_train
