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
    returns  dX: (N, D), dL/dX. Mind both fan-outs: every expert feeds T mixtures, and x feeds the
             experts and all T gates.
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
