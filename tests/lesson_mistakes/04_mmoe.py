"""Plausible wrong answers to lesson 04's exercises; the lesson's check cells must reject each one
(tests/test_lessons.py). Each block: a "# MISTAKE <id>: <what is wrong>" line, then the cell."""

# MISTAKE 04.mmoe_backward: a missing fan-out: the gates' input gradients left out of dX
# EXERCISE 04.mmoe_backward
def mmoe_backward(model, cache, dscores):
    G, F = cache
    layer = model.levels[0]
    experts = layer.experts["shared"]
    gates = [layer.gates[f"task{k}"] for k in range(model.n_tasks)]
    dM = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    dG, dF = moe.mix_backward(G, F, dM)
    dX = experts.backward(dF)
    for k, gate in enumerate(gates):
        gate.backward(dG[k])
    return dX


# MISTAKE 04.mmoe_backward: a missing fan-out: only task 0's mixture reaches the experts
# EXERCISE 04.mmoe_backward
def mmoe_backward(model, cache, dscores):
    G, F = cache
    layer = model.levels[0]
    experts = layer.experts["shared"]
    gates = [layer.gates[f"task{k}"] for k in range(model.n_tasks)]
    dM = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    dG = moe.mix_backward(G, F, dM)[0]
    dF = moe.mix_backward(G[:1], F, dM[:1])[1]
    dX = experts.backward(dF)
    for k, gate in enumerate(gates):
        dX = dX + gate.backward(dG[k])
    return dX


# MISTAKE 04.mmoe_backward: dM summed over the tasks before the mix, as in OMoE
# EXERCISE 04.mmoe_backward
def mmoe_backward(model, cache, dscores):
    G, F = cache
    layer = model.levels[0]
    experts = layer.experts["shared"]
    gates = [layer.gates[f"task{k}"] for k in range(model.n_tasks)]
    dM = sum(tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers))    # (N, H)
    dG, dF = moe.mix_backward(G, F, np.stack([dM] * model.n_tasks))
    dX = experts.backward(dF)
    for k, gate in enumerate(gates):
        dX = dX + gate.backward(dG[k])
    return dX


# MISTAKE 04.mmoe_backward: dX overwritten by each gate's input gradient (= where += is due)
# EXERCISE 04.mmoe_backward
def mmoe_backward(model, cache, dscores):
    G, F = cache
    layer = model.levels[0]
    experts = layer.experts["shared"]
    gates = [layer.gates[f"task{k}"] for k in range(model.n_tasks)]
    dM = np.stack([tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(model.towers)])
    dG, dF = moe.mix_backward(G, F, dM)
    dX = experts.backward(dF)
    for k, gate in enumerate(gates):
        dX = gate.backward(dG[k])
    return dX


# MISTAKE 04.experts_backward: the first layer's ReLU mask forgotten
# EXERCISE 04.experts_backward
def experts_backward(x, W0, b0, W1, b1, dF):
    A = np.tensordot(x, W0, axes=(1, 1)) + b0
    H = np.maximum(A, 0.0)
    Z = np.einsum("nea,eab->neb", H, W1) + b1
    dZ = dF * (Z > 0)
    dA = np.einsum("neb,eab->nea", dZ, W1)
    return {"W1": np.einsum("nea,neb->eab", H, dZ), "b1": dZ.sum(axis=0),
            "W0": np.tensordot(x, dA, axes=(0, 0)).transpose(1, 0, 2), "b0": dA.sum(axis=0),
            "dX": np.tensordot(dA, W0, axes=((1, 2), (0, 2)))}


# MISTAKE 04.experts_backward: dW0 left in tensordot's (D, E, H0) order, not transposed
# EXERCISE 04.experts_backward
def experts_backward(x, W0, b0, W1, b1, dF):
    A = np.tensordot(x, W0, axes=(1, 1)) + b0
    H = np.maximum(A, 0.0)
    Z = np.einsum("nea,eab->neb", H, W1) + b1
    dZ = dF * (Z > 0)
    dA = np.einsum("neb,eab->nea", dZ, W1) * (A > 0)
    return {"W1": np.einsum("nea,neb->eab", H, dZ), "b1": dZ.sum(axis=0),
            "W0": np.tensordot(x, dA, axes=(0, 0)), "b0": dA.sum(axis=0),
            "dX": np.tensordot(dA, W0, axes=((1, 2), (0, 2)))}


# MISTAKE 04.experts_backward: dX from expert 0 alone, not summed over the experts
# EXERCISE 04.experts_backward
def experts_backward(x, W0, b0, W1, b1, dF):
    A = np.tensordot(x, W0, axes=(1, 1)) + b0
    H = np.maximum(A, 0.0)
    Z = np.einsum("nea,eab->neb", H, W1) + b1
    dZ = dF * (Z > 0)
    dA = np.einsum("neb,eab->nea", dZ, W1) * (A > 0)
    return {"W1": np.einsum("nea,neb->eab", H, dZ), "b1": dZ.sum(axis=0),
            "W0": np.tensordot(x, dA, axes=(0, 0)).transpose(1, 0, 2), "b0": dA.sum(axis=0),
            "dX": dA[:, 0] @ W0[0].T}


# MISTAKE 04.experts_backward: dW1 with the two unit axes swapped, (E, H, H0)
# EXERCISE 04.experts_backward
def experts_backward(x, W0, b0, W1, b1, dF):
    A = np.tensordot(x, W0, axes=(1, 1)) + b0
    H = np.maximum(A, 0.0)
    Z = np.einsum("nea,eab->neb", H, W1) + b1
    dZ = dF * (Z > 0)
    dA = np.einsum("neb,eab->nea", dZ, W1) * (A > 0)
    return {"W1": np.einsum("nea,neb->eba", H, dZ), "b1": dZ.sum(axis=0),
            "W0": np.tensordot(x, dA, axes=(0, 0)).transpose(1, 0, 2), "b0": dA.sum(axis=0),
            "dX": np.tensordot(dA, W0, axes=((1, 2), (0, 2)))}


# MISTAKE 04.three_tasks: the third target y0 - y1 instead of y0 + y1
# EXERCISE 04.three_tasks
def three_task_mmoe(X_train, Y_train, lr, seed=0):
    Y3_train = np.column_stack([Y_train, Y_train[:, 0] - Y_train[:, 1]])
    model = mm.MMoE(X_train.shape[1], n_experts=8, expert_units=(16,), tower_units=(8,),
                    tasks=("regression", "regression", "regression"), seed=seed)
    mm.fit(model, X_train, Y3_train, epochs=5, batch_size=128, optimizer=mm.Adam(lr=lr), seed=seed,
           progress=False)
    return model, Y3_train


# MISTAKE 04.three_tasks: an OMoE with three tasks: one gate for all three
# EXERCISE 04.three_tasks
def three_task_mmoe(X_train, Y_train, lr, seed=0):
    Y3_train = np.column_stack([Y_train, Y_train[:, 0] + Y_train[:, 1]])
    model = mm.OMoE(X_train.shape[1], n_experts=8, expert_units=(16,), tower_units=(8,),
                    tasks=("regression", "regression", "regression"), seed=seed)
    mm.fit(model, X_train, Y3_train, epochs=5, batch_size=128, optimizer=mm.Adam(lr=lr), seed=seed,
           progress=False)
    return model, Y3_train


# MISTAKE 04.three_tasks: the model built but never trained
# EXERCISE 04.three_tasks
def three_task_mmoe(X_train, Y_train, lr, seed=0):
    Y3_train = np.column_stack([Y_train, Y_train[:, 0] + Y_train[:, 1]])
    model = mm.MMoE(X_train.shape[1], n_experts=8, expert_units=(16,), tower_units=(8,),
                    tasks=("regression", "regression", "regression"), seed=seed)
    return model, Y3_train
