"""minimoe.torch: the converted module has minimoe's structure, names and values; PyTorch autograd,
a second oracle, agrees with every hand-written gradient (float64); weights come back with
from_torch; and unsupported models or mismatched configurations are clear errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e \".[torch]\"")

import minimoe as mm  # noqa: E402
from minimoe.studies.funnel import WatchESMM  # noqa: E402
from minimoe.torch import from_torch, to_torch, torch_inputs  # noqa: E402
from minimoe.torch.convert import UnsupportedModelError  # noqa: E402

from .torch_parity import MODELS, cases, feature_input, make_inputs, run_case  # noqa: E402

SCORES_LIMIT = 1e-12      # forward: largest absolute difference of the scores (they are of order 1)
GRADIENT_LIMIT = 1e-10    # backward: largest difference relative to each gradient array's largest entry


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)              # small tensors: threads cost more than they give
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model_name, loss_kind", cases(), ids=[f"{m} | {loss}" for m, loss in cases()])
def test_autograd_agrees_with_the_hand_written_gradients(model_name, loss_kind):
    parity = run_case(model_name, loss_kind)
    assert parity.scores_eval < SCORES_LIMIT and parity.scores_train < SCORES_LIMIT, parity
    assert parity.objective < SCORES_LIMIT and parity.auxiliary < SCORES_LIMIT, parity
    assert parity.gradient_rel < GRADIENT_LIMIT, parity
    options = MODELS[model_name]().config
    if options.get("balance_weight", 0) > 0:
        assert parity.auxiliary_value > 0, "the load-balancing loss took part"
    if options.get("expert_dropout", 0) > 0:
        assert parity.dropped > 0, "the frozen dropout masks dropped some experts"
    assert (parity.missing > 0) == (loss_kind == "missing labels"), parity


def test_parameters_have_minimoe_names_in_its_order_and_are_copies():
    model = MODELS["PLE, 3 levels, dropout, balancing"]()
    net = to_torch(model)
    assert list(dict(net.named_parameters())) == list(model.params)
    for name, tensor in net.named_parameters():
        assert np.array_equal(tensor.detach().numpy(), model.params[name])
    with torch.no_grad():
        next(net.parameters()).add_(1.0)                              # a copy: minimoe's array is untouched
    first = next(iter(model.params))
    assert not np.array_equal(next(net.parameters()).detach().numpy(), model.params[first])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_dtype_is_kept(dtype):
    model = mm.MMoE(None, n_experts=3, expert_units=(4,), tower_units=(3,), inputs=feature_input(0), dtype=dtype,
                    tasks=("binary", "regression"))
    net = to_torch(model).eval()
    X = make_inputs(model, np.random.default_rng(0))
    expected = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    assert {p.dtype for p in net.parameters()} == {expected}
    with torch.no_grad():
        scores = net(torch_inputs(X, net))
    assert scores.dtype == next(net.parameters()).dtype
    np.testing.assert_allclose(scores.numpy(), model.predict_scores(X), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_dropout_and_balancing_act_in_training_mode_only():
    model = MODELS["MMoE, inputs, dropout, balancing"]()
    net = to_torch(model)
    assert net.training == model.training                           # the model's mode
    inputs = torch_inputs(make_inputs(model, np.random.default_rng(1)), net)
    torch.manual_seed(0)
    with torch.no_grad():
        first, second = net.train()(inputs), net(inputs)
        assert not torch.equal(first, second)                         # two dropout draws
        assert float(net.auxiliary_loss()) > 0
        evaluated = net.eval()(inputs)
        assert torch.equal(evaluated, net(inputs))
        assert float(net.auxiliary_loss()) == 0.0
    np.testing.assert_allclose(evaluated.numpy(), model.predict_scores(make_inputs(model, np.random.default_rng(1))),
                               rtol=0, atol=1e-12)


def test_trained_weights_come_back_with_from_torch():
    model = MODELS["ESMM, CGC, inputs"]()
    X = make_inputs(model, np.random.default_rng(2))
    net = to_torch(model)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    net(torch_inputs(X, net)).square().sum().backward()
    optimizer.step()
    before = model.predict_scores(X)
    assert from_torch(net, model) is model
    with torch.no_grad():
        trained = net.eval()(torch_inputs(X, net)).numpy()
    np.testing.assert_allclose(model.predict_scores(X), trained, rtol=0, atol=1e-12)
    assert np.abs(trained - before).max() > 1e-3                      # the step changed something


def test_a_loss_converts_and_its_log_variance_comes_back():
    loss = mm.UncertaintyWeightedLoss(("binary", "regression"), initial_log_variance=[0.2, -0.1])
    criterion = to_torch(loss)
    assert dict(criterion.named_parameters()).keys() == loss.params.keys()
    with torch.no_grad():
        criterion.log_variance.fill_(0.7)
    from_torch(criterion, loss)
    assert np.array_equal(loss.params["log_variance"], [0.7, 0.7])


def _unchanged(model, before):
    return all(np.array_equal(model.params[name], value) for name, value in before.items())


def test_from_torch_refuses_another_configuration_and_copies_nothing():
    net = to_torch(mm.MMoE(5, n_experts=3, expert_units=(4,), tower_units=(2,)))
    target = mm.MMoE(5, n_experts=4, expert_units=(4,), tower_units=(2,), seed=1)
    before = {name: value.copy() for name, value in target.params.items()}
    with pytest.raises(ValueError, match=r"n_experts: 3 vs 4.*Nothing was copied"):
        from_torch(net, target)
    assert _unchanged(target, before)
    with pytest.raises(ValueError, match="converted from a model of class MMoE, the target is a OMoE"):
        from_torch(net, mm.OMoE(5, n_experts=3, expert_units=(4,), tower_units=(2,)))


def test_from_torch_names_every_parameter_that_does_not_match():
    net = to_torch(mm.MMoE(5, n_experts=3, expert_units=(4,), tower_units=(2,)))
    del net.minimoe_class                      # as a module built by hand: only names and shapes can tell
    target = mm.MMoE(5, n_experts=4, expert_units=(4,), tower_units=(2,), seed=1)
    before = {name: value.copy() for name, value in target.params.items()}
    with pytest.raises(ValueError, match=r"shapes differ.*levels\.0\.experts\.shared\.W0: \(3, 5, 4\) vs \(4, 5, 4\)"):
        from_torch(net, target)
    assert _unchanged(target, before)          # the towers, whose shapes match, were not copied either
    with pytest.raises(ValueError, match=r"only the minimoe model has \['levels\.0\.gates\.task2\.W'"):
        from_torch(net, mm.MMoE(5, n_experts=3, expert_units=(4,), tower_units=(2,), tasks=("regression",) * 3))


def test_from_torch_unwraps_nothing_but_modules_and_targets_minimoe():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch({"W": torch.zeros(2)}, mm.MMoE(5))
    with pytest.raises(TypeError, match="minimoe model or loss"):
        from_torch(to_torch(mm.MMoE(5)), torch.nn.Linear(2, 2))


def test_unsupported_models_and_losses_are_named():
    with pytest.raises(UnsupportedModelError, match="WatchESMM, a HeadedModel"):
        to_torch(WatchESMM(4, bottom_units=(3,), tower_units=(2,)))

    class TunedMMoE(mm.MMoE):
        pass

    with pytest.raises(UnsupportedModelError, match="TunedMMoE.*SharedBottom, OMoE, MMoE, CGC, PLE, ESMM"):
        to_torch(TunedMMoE(4))
    with pytest.raises(UnsupportedModelError, match="GradNormLoss"):
        to_torch(mm.GradNormLoss())
    with pytest.raises(TypeError, match="got ndarray"):
        to_torch(np.zeros(3))


def test_inputs_convert_for_either_kind_of_model():
    dense = torch_inputs(np.ones((3, 4), dtype=np.float32), torch.float64)
    assert dense.dtype == torch.float64 and dense.shape == (3, 4)
    batch = mm.FeatureBatch(np.array([[0, 1], [2, 0]]), np.ones((2, 1)))
    ids, numeric = torch_inputs(batch, mm.MMoE(None, inputs=mm.FeatureInput([3, 2], 1), dtype=np.float32))
    assert ids.dtype == torch.long and numeric.dtype == torch.float32 and tuple(ids.shape) == (2, 2)
    with pytest.raises(TypeError, match="inputs first"):
        torch_inputs(mm.MMoE(4), np.ones((2, 4)))


@pytest.mark.parametrize("model_name", ["ESMM, CGC, inputs", "ESMM-NS (none), inputs", "MMoE, gate hidden layer"])
def test_predictions_are_minimoes_in_evaluation_mode_without_a_graph(model_name):
    model = MODELS[model_name]()
    X = make_inputs(model, np.random.default_rng(5))
    net = to_torch(model).train()
    x = torch_inputs(X, net)
    predicted = net.predict(x)
    assert net.training and not predicted.requires_grad                 # the mode restored, no graph recorded
    np.testing.assert_allclose(predicted.numpy(), model.predict(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.predict_scores(x).numpy(), model.predict_scores(X), rtol=0, atol=1e-12)
    if isinstance(model, mm.ESMM):
        np.testing.assert_allclose(net.predict_cvr(x).numpy(), model.predict_cvr(X), rtol=0, atol=1e-12)
        np.testing.assert_allclose(net.base_scores(x).numpy(), model.base_scores(X), rtol=0, atol=1e-12)
        ctr, ctcvr = net.predict(x).T
        np.testing.assert_allclose(ctcvr.numpy(), (ctr * net.predict_cvr(x)).numpy(), rtol=1e-12, atol=0)
