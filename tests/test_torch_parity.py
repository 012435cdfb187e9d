"""Optional: the same weights give the same scores and gradients in PyTorch autograd (float64).
Skipped where torch is not installed; CI need not install it."""

import numpy as np
import pytest

import minimoe as mm

torch = pytest.importorskip("torch")


def torch_forward(model, params, X):
    """A direct PyTorch transcription of minimoe's MMoE / OMoE / SharedBottom forward pass."""
    x = torch.from_numpy(X)

    def mlp(h, prefix, n_layers, activate_last):
        for i in range(n_layers):
            h = h @ params[f"{prefix}.layers.{2 * i}.W"] + params[f"{prefix}.layers.{2 * i}.b"]
            if activate_last or i < n_layers - 1:
                h = torch.relu(h)
        return h

    if isinstance(model, mm.SharedBottom):
        shared = mlp(x, "bottom", len(model.config["bottom_units"]), True)
        inputs = [shared] * model.n_tasks
    else:
        h = x
        for layer in range(len(model.config["expert_units"])):
            W, b = params[f"levels.0.experts.shared.W{layer}"], params[f"levels.0.experts.shared.b{layer}"]
            h = torch.relu(torch.einsum("nd,edh->neh", h, W) + b if layer == 0 else
                           torch.einsum("ned,edh->neh", h, W) + b)
        one_gate = isinstance(model, mm.OMoE)
        gate_names = ["shared" if one_gate else f"task{k}" for k in range(model.n_tasks)]
        inputs = []
        for name in gate_names:
            prefix, hidden = f"levels.0.gates.{name}", x
            if model.config["gate_units"]:
                hidden = mlp(x, f"{prefix}.hidden", len(model.config["gate_units"]), True)
            gate = torch.softmax(hidden @ params[f"{prefix}.W"] + params[f"{prefix}.b"], dim=1)
            inputs.append(torch.einsum("ne,neh->nh", gate, h))
    n_tower_layers = len(model.config["tower_units"]) + 1
    return torch.cat([mlp(inputs[k], f"towers.{k}", n_tower_layers, False) for k in range(model.n_tasks)], dim=1)


@pytest.mark.parametrize("build", [
    lambda: mm.MMoE(6, n_experts=4, expert_units=(5, 3), tower_units=(4,), gate_units=(3,),
                    tasks=("binary", "regression", "binary"), seed=0),
    lambda: mm.OMoE(6, n_experts=3, expert_units=(5,), tower_units=(), tasks=("regression", "binary"), seed=1),
    lambda: mm.SharedBottom(6, bottom_units=(7, 5), tower_units=(3,), tasks=("binary", "regression"), seed=2),
], ids=["MMoE", "OMoE", "SharedBottom"])
def test_scores_and_gradients_match_pytorch(build):
    model = build()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 6))
    Y = np.stack([rng.integers(0, 2, 9) if t.kind == "binary" else rng.standard_normal(9) for t in model.tasks], 1)
    loss = mm.MultiTaskLoss(model.tasks, weights=np.linspace(0.5, 1.5, model.n_tasks))
    scores = model.forward(X)
    loss.forward(scores, Y)
    model.zero_grad()
    model.backward(loss.backward())

    params = {name: torch.tensor(value, requires_grad=True) for name, value in model.params.items()}
    torch_scores = torch_forward(model, params, X)
    targets = torch.from_numpy(Y)
    total = 0
    for k, task in enumerate(model.tasks):
        s, y = torch_scores[:, k], targets[:, k]
        per_row = (torch.nn.functional.binary_cross_entropy_with_logits(s, y, reduction="none")
                   if task.kind == "binary" else (s - y) ** 2)
        total = total + loss.weights[k] * per_row.mean()
    total.backward()

    np.testing.assert_allclose(scores, torch_scores.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name, grad in model.grads.items():
        np.testing.assert_allclose(grad, params[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
