import numpy as np
import pytest

import minimoe as mm


def test_sgd_step_by_hand():
    params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, 0.25])}
    mm.SGD(lr=0.1).step(params, grads)
    np.testing.assert_allclose(params["w"], [0.95, -2.025])


def test_sgd_momentum_by_hand():
    params, grads = {"w": np.array([1.0])}, {"w": np.array([2.0])}
    sgd = mm.SGD(lr=0.1, momentum=0.9)
    sgd.step(params, grads)                      # v = 2,           w = 1 - 0.2 = 0.8
    sgd.step(params, grads)                      # v = 0.9*2 + 2 = 3.8, w = 0.8 - 0.38 = 0.42
    np.testing.assert_allclose(params["w"], [0.42])


def test_adam_first_step_by_hand():
    # Step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2 -> w -= lr * g / (|g| + eps)
    params, grads = {"w": np.array([1.0, -1.0, 0.5])}, {"w": np.array([0.2, -3.0, 0.0])}
    mm.Adam(lr=0.01).step(params, grads)
    expected = np.array([1.0, -1.0, 0.5]) - 0.01 * np.array([0.2, -3.0, 0.0]) / (np.abs([0.2, -3.0, 0.0]) + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


def test_adam_second_step_by_hand():
    w, g1, g2, lr, b1, b2, eps = 1.0, 0.5, -1.0, 0.1, 0.9, 0.999, 1e-8
    params = {"w": np.array([w])}
    adam = mm.Adam(lr=lr)
    adam.step(params, {"w": np.array([g1])})
    adam.step(params, {"w": np.array([g2])})
    m = (1 - b1) * (b1 * g1 + g2)
    v = (1 - b2) * (b2 * g1 ** 2 + g2 ** 2)
    w1 = w - lr * g1 / (abs(g1) + eps)
    w2 = w1 - lr * (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
    np.testing.assert_allclose(params["w"], [w2], rtol=1e-12)


def test_adam_keeps_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    mm.Adam().step(params, {"w": np.full(3, 0.5, dtype=np.float32)})
    assert params["w"].dtype == np.float32


@pytest.mark.parametrize("make, match", [
    (lambda: mm.SGD(lr=0), r"lr must lie in \(0.0"), (lambda: mm.SGD(lr=0.1, momentum=1.0), "momentum"),
    (lambda: mm.Adam(lr=-1), "lr"), (lambda: mm.Adam(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: mm.Adam(lr=float("nan")), "lr"),
])
def test_optimizers_reject_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_adam_weight_decay_by_hand():
    # Decoupled: p <- p - lr * w * p - lr * m_hat / (sqrt(v_hat) + eps); step 1: m_hat / sqrt(v_hat) = sign(g)
    params, grads = {"w": np.array([2.0, -1.0])}, {"w": np.array([0.5, 0.0])}
    mm.Adam(lr=0.1, weight_decay=0.01).step(params, grads)
    expected = np.array([2.0, -1.0]) * (1 - 0.1 * 0.01) - 0.1 * np.array([0.5, 0.0]) / (np.array([0.5, 0.0]) + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="weight_decay"):
        mm.Adam(weight_decay=-1.0)
