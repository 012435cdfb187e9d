"""The module contract, held with no exceptions: backward is linear, a regulariser's gradient comes
from its own call (once per step), no parameter escapes the optimizer, an optimizer belongs to the
parameters it stepped, and no module reaches into another's private names."""

import re
from pathlib import Path

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_MODEL, frozen_dropout, numerical_gradient, relative_error, settle_relu_units

PACKAGE = Path(mm.__file__).resolve().parent


def remedied_models():
    """Every model class with both remedies on, and T = 2 tasks of mixed kinds."""
    tasks = ("binary", "regression")
    return [mm.SharedBottom(5, (6,), (3,), tasks=tasks, seed=0),
            mm.OMoE(5, 3, (4,), (3,), tasks=tasks, gate_units=(3,), seed=1, balance_weight=0.5, expert_dropout=0.3),
            mm.MMoE(5, 3, (4, 3), (3,), tasks=tasks, seed=2, balance_weight=0.5, expert_dropout=0.3),
            mm.CGC(5, 2, [1, 2], (4,), (3,), tasks=tasks, seed=3, balance_weight=0.5, expert_dropout=0.3),
            mm.PLE(5, 2, 1, 1, (4,), (3,), tasks=tasks, gate_units=(2,), seed=4, balance_weight=0.5,
                   expert_dropout=0.3)]


@pytest.mark.parametrize("model", remedied_models(), ids=lambda m: type(m).__name__)
def test_backward_is_linear_in_its_upstream_gradient(model, rng):
    """backward(a) + backward(b) == backward(a + b), in training mode with the regularisers on:
    per-task backward passes (GradNorm, task_gradient_norms) rely on it."""
    X, a, b = rng.standard_normal((7, 5)), rng.standard_normal((7, 2)), rng.standard_normal((7, 2))
    model.train()
    with frozen_dropout(model):
        model.forward(X)
        model.zero_grad()
        dx_sum = model.backward(a) + model.backward(b)
        separate = {name: grad.copy() for name, grad in model.grads.items()}
        model.zero_grad()
        dx_joint = model.backward(a + b)
    np.testing.assert_allclose(dx_sum, dx_joint, rtol=1e-12, atol=1e-14)
    for name, grad in model.grads.items():
        np.testing.assert_allclose(separate[name], grad, rtol=1e-12, atol=1e-14, err_msg=name)


def test_gradnorm_with_load_balancing_counts_the_balancing_gradient_once(rng):
    """fit's step under GradNorm (one backward per task, then the auxiliary call) gives the gradient
    of the full objective  sum_k w_k L_k + balance_weight * balance  with the balancing term once,
    checked against central differences of that objective."""
    model = mm.MMoE(4, 3, (5,), (3,), tasks=("binary", "regression"), seed=0, balance_weight=0.8)
    loss = mm.GradNormLoss(model.tasks, weights=[0.7, 1.3])
    X = rng.standard_normal((10, 4))
    Y = np.column_stack([rng.integers(0, 2, 10), rng.standard_normal(10)])
    weights = loss.weights.copy()                  # backward_model adapts them after its passes
    model.train()
    loss.forward(model.forward(X), Y)
    model.zero_grad()
    loss.backward_model(model)
    model.backward_auxiliary(input_grad=False)
    analytic = {name: grad.copy() for name, grad in model.grads.items()}
    fixed = mm.MultiTaskLoss(model.tasks, weights=weights)

    def objective():
        return np.asarray(fixed.forward(model.forward(X), Y) + model.auxiliary_loss())

    gate = "levels.0.gates.task0.W"
    numeric = numerical_gradient(objective, model.params[gate], np.ones(()))
    assert relative_error(analytic[gate], numeric) < THRESHOLD_MODEL
    for name in ("levels.0.experts.shared.W0", "towers.1.layers.0.W"):
        assert relative_error(analytic[name], numerical_gradient(objective, model.params[name], np.ones(()))) \
            < THRESHOLD_MODEL, name


def test_a_parameter_added_after_construction_is_trained(rng):
    """A block that grows a parameter after construction (a learned output offset) still has it
    stepped by fit's optimizer and zeroed by zero_grad."""

    class Offset(mm.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x):
            return x + self.params["offset"] if "offset" in self.params else x

        def backward(self, dy, input_grad=True):
            if "offset" in self.params:
                self.grads["offset"][...] += dy.sum(axis=0)
            return dy

    model = mm.SharedBottom(3, (4,), (2,), tasks=("regression",), seed=0)
    offset = Offset()
    model.towers[0].layers.add_child("offset", offset)       # the tower's last layer, then the offset
    offset.add_param("offset", np.zeros(1))
    X = rng.standard_normal((200, 3))
    Y = 5.0 + X[:, :1]
    mm.fit(model, X, Y, epochs=3, optimizer=mm.Adam(lr=0.05), progress=False)
    assert model.params["towers.0.layers.offset.offset"][0] > 0.1     # it moved towards 5
    assert model.n_params() == sum(param.size for param in model.params.values())


def test_an_optimizer_reused_on_a_second_model_is_refused(rng):
    X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 2))
    optimizer = mm.Adam(lr=1e-3)
    first = mm.MMoE(4, 2, (3,), (2,), seed=0)
    mm.fit(first, X, Y, epochs=1, optimizer=optimizer, progress=False)
    mm.fit(first, X, Y, epochs=1, optimizer=optimizer, progress=False)     # the same model: continues
    second = mm.MMoE(4, 2, (3,), (2,), seed=1)
    with pytest.raises(ValueError, match="an optimizer belongs to the parameters it first stepped"):
        mm.fit(second, X, Y, epochs=1, optimizer=optimizer, progress=False)


def test_early_stopping_restores_the_loss_parameters_too():
    X, Y = mm.data.make_synthetic(600, 6, correlation=0.5, seed=0)
    model = mm.MMoE(6, 2, (4,), (3,), seed=0)
    loss = mm.UncertaintyWeightedLoss(model.tasks)
    seen = {}

    class Recording(mm.Adam):
        def step(self, params, grads):
            super().step(params, grads)
            seen.setdefault("log_variance", []).append(loss.params["log_variance"].copy())

    history = mm.fit(model, X[:400], Y[:400], epochs=12, batch_size=400, optimizer=Recording(lr=0.05),
                     loss=loss, validation=(X[400:], Y[400:]), early_stopping=2, progress=False)
    assert history.best_epoch < len(history.train_loss)                 # it did stop after a worse epoch
    np.testing.assert_array_equal(loss.params["log_variance"], seen["log_variance"][history.best_epoch - 1])


def test_fit_leaves_the_model_in_the_mode_it_had(rng):
    X, Y = rng.standard_normal((20, 4)), rng.standard_normal((20, 2))
    model = mm.MMoE(4, 2, (3,), (2,), expert_dropout=0.2).eval()
    mm.fit(model, X, Y, epochs=1, progress=False)
    assert not any(module.training for module in model.modules())


def test_no_module_touches_another_modules_private_names():
    """``other._name`` appears only in module.py, where the base class keeps the tree. (Libraries'
    own submodules, such as ``torch._dynamo`` that minimoe.torch imports before forking, are not
    minimoe's modules.)"""
    pattern = re.compile(r"\b(?!self\b|cls\b|super\(\))([A-Za-z_][A-Za-z0-9_]*)\._[a-z][A-Za-z0-9_]*")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "module.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for match in pattern.finditer(code):
                if match.group(1) not in ("np", "os", "sys", "torch"):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {match.group(0)}")
    assert not offenders, offenders


def test_the_core_never_imports_the_studies():
    studies = re.compile(r"^\s*(from\s+\.+studies|from\s+minimoe\.studies|import\s+minimoe\.studies)", re.M)
    core = [p for p in PACKAGE.rglob("*.py") if "studies" not in p.parts and p.name != "cli.py"]
    assert core and not [p.name for p in core if studies.search(p.read_text())]


def test_nothing_points_outside_the_repository():
    """Design notes a reader needs live in docs/; no code comment sends them to a file they lack."""
    root = PACKAGE.parent
    files = list(PACKAGE.rglob("*.py")) + list((root / "benchmarks").glob("*.py")) + [root / "README.md"]
    outside = re.compile(r"\.\./shared|shared/design")
    assert not [p.name for p in files if outside.search(p.read_text())]
    for path in files:
        for target in re.findall(r"docs/[\w./-]+\.md", path.read_text()):
            assert (root / target).is_file(), f"{path.name} points to {target}, which does not exist"


def test_the_progress_bar_writes_one_line_per_epoch_into_a_pipe(capsys):
    import io

    from minimoe.progress import ProgressBar
    stream = io.StringIO()                                   # not a terminal
    bar = ProgressBar(30, "fit", stream=stream)
    for epoch in range(3):
        for _ in range(10):
            bar.update(1, loss=0.5)
        bar.end_epoch(epoch=epoch + 1)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text and text.count("\n") == 3, text
    terminal = io.StringIO()
    redrawing = ProgressBar(30, "fit", stream=terminal, redraw=True, min_interval=0.0)
    for _ in range(30):
        redrawing.update(1)
    redrawing.close()
    assert terminal.getvalue().count("\r") == 31 and terminal.getvalue().count("\n") == 1


def structure_models():
    """Every model class and every ESMM backbone, with an input layer on some, and an uneven CGC."""
    inputs = lambda: mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)  # noqa: E731
    tasks = ("binary", "regression", "binary")
    return {
        "SharedBottom": mm.SharedBottom(5, (6,), (3,), tasks=tasks, seed=0),
        "OMoE": mm.OMoE(5, 3, (4,), (3,), tasks=tasks, seed=0),
        "MMoE with inputs": mm.MMoE(None, 3, (4,), (3,), tasks=tasks, gate_units=(3,), inputs=inputs(), seed=0),
        "CGC uneven": mm.CGC(5, n_shared_experts=2, n_task_experts=[2, 0, 1], expert_units=(4,), tower_units=(3,),
                             tasks=tasks, seed=0),
        "CGC no shared experts": mm.CGC(5, n_shared_experts=0, n_task_experts=2, expert_units=(4,),
                                        tower_units=(3,), tasks=tasks[:2], seed=0),
        "PLE 3 levels": mm.PLE(5, n_levels=3, n_shared_experts=1, n_task_experts=[1, 2, 1], expert_units=(4,),
                               tower_units=(3,), tasks=tasks, seed=0),
        "ESMM shared_bottom": mm.ESMM(5, "shared_bottom", (3,), bottom_units=(6,), seed=0),
        "ESMM mmoe with inputs": mm.ESMM(None, "mmoe", (3,), n_experts=3, expert_units=(4,), inputs=inputs(), seed=0),
        "ESMM cgc": mm.ESMM(5, "cgc", (3,), n_shared_experts=1, n_task_experts=2, expert_units=(4,), seed=0),
        "ESMM ple": mm.ESMM(5, "ple", (3,), n_levels=2, n_shared_experts=2, n_task_experts=1, expert_units=(4,),
                            seed=0),
    }


def reached_by_backward(model, X, rng) -> list[set]:
    """For each task, the parameters whose gradient a backward pass of that task's score alone
    makes non-zero (every unit settled live first, so that zero means unreachable)."""
    settle_relu_units(model, X)
    scores = model.forward(X)
    reached = []
    for k in range(model.n_tasks):
        dscores = np.zeros_like(scores)
        dscores[:, k] = rng.standard_normal(len(scores))
        model.zero_grad()
        model.forward(X)
        model.backward(dscores, input_grad=False)
        reached.append({name for name, grad in model.grads.items() if np.any(grad)})
    return reached


@pytest.mark.parametrize("name", list(structure_models()))
def test_shared_parameters_are_what_every_tasks_backward_reaches(name, rng):
    model = structure_models()[name]
    with_inputs = getattr(model, "base", model).inputs is not None
    X = mm.FeatureBatch(rng.integers(0, [4, 3], size=(32, 2)), rng.standard_normal((32, 2))) if with_inputs \
        else rng.standard_normal((32, 5))
    reached = reached_by_backward(model, X, rng)
    for k, names in enumerate(reached):
        assert names == set(model.parameters_reached_by(k)), (k, names ^ set(model.parameters_reached_by(k)))
    every = set.intersection(*reached)
    assert set(model.shared_parameters()) == every, set(model.shared_parameters()) ^ every
    if name == "CGC no shared experts":                               # nothing but the input is shared
        assert not every
        with pytest.raises(ValueError, match="no expert group that every task reaches"):
            model.shared_parameters(last_layer=True)
    else:
        assert set(model.shared_parameters(last_layer=True)) <= every
