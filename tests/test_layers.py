import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK
from minimoe.layers import sigmoid, softmax

from .helpers import assert_gradients, away_from_zero


@pytest.mark.parametrize("n, d_in, d_out", [(1, 1, 1), (5, 3, 4), (7, 8, 2)])
def test_linear_gradients(n, d_in, d_out, rng):
    layer = mm.Linear(d_in, d_out, seed=rng)
    report = assert_gradients(layer, rng.standard_normal((n, d_in)), threshold=THRESHOLD_BLOCK)
    assert {"W", "b", "input"} <= set(report)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5)])
def test_relu_gradients(shape, rng):
    assert_gradients(mm.ReLU(), away_from_zero(rng.standard_normal(shape)), threshold=THRESHOLD_BLOCK)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_sigmoid_gradients(scale, rng):
    assert_gradients(mm.Sigmoid(), scale * rng.standard_normal((6, 3)), threshold=THRESHOLD_BLOCK)


def test_sigmoid_is_stable_at_extremes():
    values = sigmoid(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]))
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values, [0.0, 1.928749847963918e-22, 0.5, 1.0, 1.0], rtol=1e-12, atol=0)


def test_softmax_gradients(rng):
    assert_gradients(mm.Softmax(), rng.standard_normal((5, 4)), threshold=THRESHOLD_BLOCK)


def test_softmax_gradients_when_saturated(rng):
    # Logits 50 apart: the true gradient is ~1e-20, so only an absolute comparison at the scale of
    # an unsaturated gradient (floor=1) is meaningful; the analytic side must also stay finite.
    z = 50.0 * rng.standard_normal((5, 4))
    assert_gradients(mm.Softmax(), z, floor=1.0, threshold=THRESHOLD_BLOCK)


def test_softmax_backward_equals_full_jacobian(rng):
    z, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer = mm.Softmax()
    y = layer.forward(z)
    for row in range(3):
        jacobian = np.diag(y[row]) - np.outer(y[row], y[row])      # dy_i/dz_j = y_i (delta_ij - y_j)
        np.testing.assert_allclose(layer.backward(dy)[row], jacobian.T @ dy[row], rtol=1e-12, atol=1e-15)


def test_softmax_is_stable_at_large_logits():
    y = softmax(np.array([[1000.0, 0.0, -1000.0], [800.0, 800.0, 800.0]]))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)


def test_embedding_gradients_with_repeated_ids(rng):
    layer = mm.Embedding(num_embeddings=5, dim=3, seed=rng)
    ids = np.array([0, 3, 3, 1, 3, 0])
    assert_gradients(layer, ids, threshold=THRESHOLD_BLOCK)
    layer.zero_grad()
    dy = rng.standard_normal((6, 3))
    layer.forward(ids)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"][3], dy[1] + dy[2] + dy[4])
    np.testing.assert_allclose(layer.grads["W"][0], dy[0] + dy[5])
    np.testing.assert_array_equal(layer.grads["W"][[2, 4]], 0)


def test_embedding_initial_scale():
    default = mm.Embedding(2000, 4, seed=0)
    small = mm.Embedding(2000, 4, seed=0, init_std=0.01)
    assert abs(default.params["W"].std() - 1.0) < 0.03
    np.testing.assert_allclose(small.params["W"], 0.01 * default.params["W"])     # the same draws, scaled
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="init_std"):
            mm.Embedding(3, 2, init_std=bad)


def test_embedding_rejects_bad_ids():
    layer = mm.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\), got 4"):
        layer.forward(np.array([0, 4]))
    with pytest.raises(TypeError, match="integer"):
        layer.forward(np.array([0.0, 1.0]))


@pytest.mark.parametrize("units, activate_last", [((4,), True), ((5, 3), True), ((4, 1), False)])
def test_mlp_gradients(units, activate_last, rng):
    mlp = mm.MLP(3, units, seed=rng, activate_last=activate_last)
    assert_gradients(mlp, rng.standard_normal((8, 3)), threshold=THRESHOLD_BLOCK)


def test_layers_keep_float32(rng):
    mlp = mm.MLP(3, (4, 2), seed=0, dtype=np.float32)
    out = mlp.forward(rng.standard_normal((5, 3)).astype(np.float32))
    assert out.dtype == np.float32
    assert mlp.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in mlp.grads.values())


def test_backward_does_not_write_into_dout(rng):
    layer = mm.Softmax()
    layer.forward(rng.standard_normal((4, 3)))
    dy = rng.standard_normal((4, 3))
    before = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, before)


@pytest.mark.parametrize("bad, error, match", [
    (dict(d_in=0), ValueError, "d_in must be >= 1"),
    (dict(d_in=2.5), TypeError, "d_in must be a positive int"),
    (dict(init="xavier"), ValueError, "init must be one of"),
    (dict(dtype=np.int32), ValueError, "dtype must be float32 or float64"),
])
def test_linear_rejects_bad_arguments(bad, error, match):
    arguments = dict(d_in=2, d_out=3) | bad
    with pytest.raises(error, match=match):
        mm.Linear(**arguments)


def test_seeds_give_identical_parameters():
    a, b = mm.MLP(4, (3, 2), seed=7), mm.MLP(4, (3, 2), seed=7)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["layers.0.W"], mm.MLP(4, (3, 2), seed=8).params["layers.0.W"])


@pytest.mark.parametrize("n_ids, n_rows", [(5, 40), (3000, 40)], ids=["bincount", "sorted"])
def test_scatter_add_rows_accumulates_repeated_ids_as_add_at_does(n_ids, n_rows, rng):
    """Both ways (a bincount for a table not much larger than the batch, sort-and-reduceat for a
    large one) give np.add.at's result, repeated ids summed, onto what the target held."""
    from minimoe.layers import scatter_add_rows
    ids = rng.integers(0, min(n_ids, 10), n_rows)                   # many repeats
    rows = rng.standard_normal((n_rows, 3))
    start = rng.standard_normal((n_ids, 3))
    expected = start.copy()
    np.add.at(expected, ids, rows)
    target = start.copy()
    scatter_add_rows(target, ids, rows)
    np.testing.assert_allclose(target, expected, rtol=1e-13, atol=1e-13)
    float32 = start.astype(np.float32)
    scatter_add_rows(float32, ids, rows.astype(np.float32))
    assert float32.dtype == np.float32
    np.testing.assert_allclose(float32, expected, rtol=1e-5, atol=1e-5)


def test_embedding_lookup_without_checks_is_the_same(rng):
    layer = mm.Embedding(7, 3, seed=0)
    ids = rng.integers(0, 7, 10)
    np.testing.assert_array_equal(layer.forward(ids), layer.forward(ids, check=False))
    np.testing.assert_array_equal(layer.forward(ids), layer.params["W"][ids])
