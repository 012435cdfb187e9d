"""ESMM (Ma et al., SIGIR 2018): the funnel head in log space, its gradients at extreme logits, the
model on every backbone, its labels, and what it predicts."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.functions import sigmoid
from minimoe.gradcheck import THRESHOLD_BLOCK, THRESHOLD_MODEL, settle_relu_units
from minimoe.heads import FunnelHead, funnel_logits

from .helpers import assert_gradients

BACKBONES = {"shared_bottom": dict(bottom_units=(6,)),
             "mmoe": dict(n_experts=3, expert_units=(4,), gate_units=(2,)),
             "cgc": dict(n_shared_experts=1, n_task_experts=1, expert_units=(4,)),
             "ple": dict(n_levels=2, n_shared_experts=1, n_task_experts=[1, 2], expert_units=(4,))}


def test_the_head_is_the_logit_of_the_product(rng):
    logits = rng.uniform(-8, 8, size=(50, 2))
    scores = FunnelHead().forward(logits)
    p = sigmoid(logits[:, 0]) * sigmoid(logits[:, 1])
    np.testing.assert_array_equal(scores[:, 0], logits[:, 0])
    np.testing.assert_allclose(scores[:, 1], np.log(p / (1 - p)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sigmoid(scores[:, 1]), p, rtol=1e-12)


@pytest.mark.parametrize("a, b", [(50, 50), (50, -50), (-50, 50), (-50, -50), (800, 800), (-800, 3), (3, -800),
                                  (40, 0.0), (0.0, 40)])
def test_the_head_is_finite_and_exact_at_extreme_logits(a, b):
    c, log_p, log_not_p = funnel_logits(np.array([float(a)]), np.array([float(b)]))
    assert np.isfinite([c, log_p, log_not_p]).all()
    # The exact values, from log sigmoid(x) = -softplus(-x), computed here with np.logaddexp.
    exact_log_p = -np.logaddexp(0, -a) - np.logaddexp(0, -b)
    np.testing.assert_allclose(log_p, exact_log_p, rtol=1e-12)
    if a > 30 and b > 30:             # p within 1e-13 of 1: 1 - p ~ e^-a + e^-b
        np.testing.assert_allclose(log_not_p, np.logaddexp(-a, -b), rtol=1e-9)
    if min(a, b) < -30:               # p tiny: c is log p to within p
        np.testing.assert_allclose(c, log_p, rtol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 10.0, 50.0, 500.0])
def test_the_head_gradient(scale, rng):
    logits = scale * rng.uniform(-1, 1, size=(8, 2))
    logits[0] = [scale, scale]
    logits[1] = [scale, -scale]
    assert_gradients(FunnelHead(), logits, threshold=THRESHOLD_BLOCK)


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_esmm_gradients_on_every_backbone(backbone, rng):
    model = mm.ESMM(5, backbone=backbone, tower_units=(3,), seed=1, **BACKBONES[backbone])
    report = assert_gradients(model, rng.standard_normal((16, 5)), threshold=THRESHOLD_MODEL)
    assert set(model.params) | {"input"} <= set(report)


@pytest.mark.parametrize("backbone", ["shared_bottom", "mmoe"])
def test_esmm_gradients_at_logits_of_plus_minus_50_with_an_input_layer(backbone, rng):
    inputs = mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)
    model = mm.ESMM(None, backbone=backbone, tower_units=(3,), inputs=inputs, seed=2, **BACKBONES[backbone])
    X = mm.FeatureBatch(rng.integers(0, [4, 3], size=(16, 2)), rng.standard_normal((16, 2)))
    settle_relu_units(model, X)                                     # before the rescaling it would undo
    logits = model.base.forward(X)                                    # (a, b) of the two towers
    for k in range(2):                                                # rescale each tower: max |logit| = 50
        for name in ("W", "b"):
            model.params[f"base.towers.{k}.layers.2.{name}"][...] *= 50.0 / np.abs(logits[:, k]).max()
    scores = model.forward(X)
    assert np.abs(model.base.forward(X)).max(axis=0) == pytest.approx([50.0, 50.0])
    Y = np.column_stack([(scores[:, 0] < 0), np.zeros(16)]).astype(float)  # clicks wrong on purpose
    loss = mm.MultiTaskLoss(model.tasks)
    assert np.isfinite(loss.forward(scores, Y))
    assert_gradients(model, X, dout=loss.backward(), threshold=THRESHOLD_MODEL, settle=False)


def test_predictions(rng):
    model = mm.ESMM(5, backbone="mmoe", tower_units=(3,), seed=0, **BACKBONES["mmoe"])
    X = rng.standard_normal((6, 5))
    p_ctr, p_ctcvr = model.predict(X).T
    p_cvr = model.predict_cvr(X)
    np.testing.assert_allclose(p_ctcvr, p_ctr * p_cvr, rtol=1e-12)
    assert model.gate_weights(X).shape == (2, 6, 3)
    with pytest.raises(TypeError, match="has no gates"):
        mm.ESMM(5, bottom_units=(4,)).gate_weights(X)
    # The CTCVR task reads the CTR tower too: every task reaches the experts, the CTR gate and tower.
    assert model.shared_parameters() == ["base.levels.0.experts.shared.W0", "base.levels.0.experts.shared.b0",
                                         "base.levels.0.gates.task0.W", "base.levels.0.gates.task0.b",
                                         "base.levels.0.gates.task0.hidden.layers.0.W",
                                         "base.levels.0.gates.task0.hidden.layers.0.b",
                                         "base.towers.0.layers.0.W", "base.towers.0.layers.0.b",
                                         "base.towers.0.layers.2.W", "base.towers.0.layers.2.b"]
    assert model.shared_parameters(last_layer=True) == ["base.towers.0.layers.2.W"]


def test_predict_agrees_with_the_heads_logit_at_any_scale(rng):
    """predict multiplies the two sigmoids; the trained score is the head's log-space logit c."""
    model = mm.ESMM(5, bottom_units=(4,), tower_units=(3,), seed=0)
    for scale in (1.0, 30.0, 300.0):
        X = scale * rng.standard_normal((50, 5))
        p_ctr, p_ctcvr = model.predict(X).T
        a, c = model.predict_scores(X).T
        np.testing.assert_allclose(p_ctr, sigmoid(a), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(p_ctcvr, sigmoid(c), rtol=1e-12, atol=1e-300)


def test_esmm_learns_the_conversion_rate_of_every_impression(rng):
    """A funnel where clicks and conversions depend on different features: after training on
    (click, click and conversion) alone, pCVR ranks the true conversion probability of every
    impression, clicked or not."""
    n = 20_000
    X = rng.standard_normal((n, 4))
    p_click, p_convert = sigmoid(X[:, 0] - 1.0), sigmoid(2 * X[:, 1])
    click = (rng.random(n) < p_click).astype(float)
    convert = (rng.random(n) < p_convert).astype(float)
    Y = np.column_stack([click, click * convert])
    model = mm.ESMM(4, tower_units=(8,), bottom_units=(16,), seed=0)
    mm.fit(model, X, Y, epochs=4, batch_size=256, optimizer=mm.Adam(lr=1e-2), progress=False)
    assert np.corrcoef(model.predict_cvr(X), p_convert)[0, 1] > 0.9
    assert np.corrcoef(model.predict(X)[:, 0], p_click)[0, 1] > 0.9


def test_save_and_load(tmp_path, rng):
    model = mm.ESMM(5, backbone="ple", tower_units=(3,), seed=0, **BACKBONES["ple"])
    model.save(tmp_path / "m.npz")
    loaded = mm.load(tmp_path / "m.npz")
    X = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_cvr(X), model.predict_cvr(X))


class TestBadInput:
    def test_a_conversion_without_a_click(self, rng):
        model = mm.ESMM(3, bottom_units=(4,))
        Y = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
        with pytest.raises(ValueError, match=r"Y\[:, 1\] \(click and conversion\) is 1 at row 1, where Y\[:, 0\]"):
            mm.fit(model, rng.standard_normal((3, 3)), Y, epochs=1, progress=False)

    def test_a_click_that_is_not_0_or_1(self, rng):
        with pytest.raises(ValueError, match=r"Y\[:, 0\] is a binary task, labels must be 0 or 1"):
            mm.fit(mm.ESMM(3, bottom_units=(4,)), rng.standard_normal((2, 3)), [[0.5, 0.0], [1.0, 1.0]],
                   epochs=1, progress=False)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(backbone="omoe"), "backbone must be one of"),
        (dict(tasks=("binary", "regression")), "two binary ones"),
        (dict(backbone="mmoe", bottom_units=(4,)), "bottom_units"),
    ])
    def test_bad_construction(self, kwargs, match):
        with pytest.raises((ValueError, TypeError), match=match):
            mm.ESMM(3, **kwargs)


def test_a_raw_conversion_column_is_refused_and_the_label_builder_named():
    """Fed the funnel's raw (click, conversion) columns, ESMM would read the conversion's NaN on
    unclicked rows as missing and train the CTCVR task on clicked rows only."""
    X, Y = mm.data.make_funnel(3000, seed=0)
    assert np.isnan(Y[:, 1]).mean() > 0.5
    model = mm.ESMM(None, inputs=mm.FeatureInput([200, 30, 8], n_numeric=6, seed=0), bottom_units=(8,), seed=0)
    with pytest.raises(ValueError, match=r"\[:, 1\] \(ctcvr: click and conversion\) is NaN at row .*"
                                         r"mm\.data\.esmm_labels\(Y\)"):
        mm.fit(model, X, Y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="esmm_labels"):
        mm.evaluate(model, X, Y)
    mm.fit(model, X, mm.data.esmm_labels(Y), epochs=1, progress=False)      # the right labels train


def _funnel_batch(rng, n=32):
    return mm.FeatureBatch(rng.integers(0, [4, 3], size=(n, 2)), rng.standard_normal((n, 2)))


def test_the_papers_esmm_is_an_embedding_layer_and_two_towers(rng):
    """By default ESMM shares only the input layer, as the paper does: its parameters are the
    embeddings and the two towers, nothing else."""
    inputs = mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)
    model = mm.ESMM(None, tower_units=(3,), inputs=inputs, seed=0)
    assert model.config["bottom_units"] == [] and model.config["backbone"] == "shared_bottom"
    expected = {"base.inputs.embeddings.0.W", "base.inputs.embeddings.1.W"} | {
        f"base.towers.{k}.layers.{layer}.{p}" for k in (0, 1) for layer in (0, 2) for p in ("W", "b")}
    assert set(model.params) == expected
    assert model.n_params() == inputs.n_params() + 2 * (inputs.d_out * 3 + 3 + 3 + 1)
    X = _funnel_batch(rng)
    assert_gradients(model, X, threshold=THRESHOLD_MODEL)
    assert set(model.shared_parameters()) == {name for name in expected if "towers.1" not in name}


def test_the_cvr_tower_learns_only_through_the_ctcvr_loss(rng):
    """The CVR tower's gradient is zero when only the click's loss is on, and non-zero from the
    CTCVR loss alone: it never sees a conversion label of its own."""
    model = mm.ESMM(None, tower_units=(3,), inputs=mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0),
                    seed=0)
    X = _funnel_batch(rng)
    Y = np.column_stack([rng.integers(0, 2, 32), np.zeros(32)])
    Y[:, 1] = Y[:, 0] * rng.integers(0, 2, 32)
    for weights, cvr_moves in (([1.0, 0.0], False), ([0.0, 1.0], True)):
        loss = mm.MultiTaskLoss(model.tasks, weights=weights)
        loss.forward(model.forward(X), Y)
        model.zero_grad()
        loss.backward_model(model)
        cvr = [grad for name, grad in model.grads.items() if name.startswith("base.towers.1.")]
        assert any(np.any(grad) for grad in cvr) == cvr_moves


def test_esmm_ns_shares_nothing(rng):
    inputs = mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)
    model = mm.ESMM(None, backbone="none", tower_units=(3,), inputs=inputs, seed=0)
    assert sum(name.endswith("embeddings.0.W") for name in model.params) == 2        # one input layer each
    assert all(name.startswith("base.models.0.") for name in model.shared_parameters())   # the CTR model only
    assert model.shared_parameters(last_layer=True) == ["base.models.0.towers.0.layers.2.W"]
    X = _funnel_batch(rng)
    assert_gradients(model, X, threshold=THRESHOLD_MODEL)
    copy_ = mm.ESMM(**model.config)
    assert copy_.config == model.config and set(copy_.params) == set(model.params)


def test_a_shared_bottom_without_a_bottom(rng):
    model = mm.SharedBottom(5, bottom_units=(), tower_units=(3,), tasks=("binary", "regression"), seed=0)
    assert not any(name.startswith("bottom.") for name in model.params) and model.shared_parameters() == []
    assert_gradients(model, rng.standard_normal((16, 5)), threshold=THRESHOLD_MODEL)
    with pytest.raises(ValueError, match="shares no layer"):
        model.shared_parameters(last_layer=True)
