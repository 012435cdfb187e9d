import numpy as np
import pytest

import minimoe as mm


def test_log1p_round_trip_and_identity_columns(rng):
    transform = mm.TargetTransform(("identity", "log1p"))
    Y = np.column_stack([rng.integers(0, 2, 20), rng.lognormal(3, 1, 20)])
    original = Y.copy()
    Z = transform.forward(Y)
    np.testing.assert_array_equal(Y, original)                   # the caller's array is untouched
    np.testing.assert_array_equal(Z[:, 0], Y[:, 0])
    np.testing.assert_allclose(Z[:, 1], np.log1p(Y[:, 1]))
    np.testing.assert_allclose(transform.inverse(Z), Y, rtol=1e-12)


def test_the_mean_correction_matches_a_log_normal_mean():
    """If log1p(y) ~ N(mu, v), E[y] = exp(mu + v / 2) - 1; plain expm1 gives the median."""
    rng = np.random.default_rng(0)
    mu, v = 3.0, 0.64
    y = np.expm1(rng.normal(mu, np.sqrt(v), 400_000))
    transform = mm.TargetTransform(("log1p",))
    prediction = np.array([[mu]])
    assert transform.inverse(prediction)[0, 0] == pytest.approx(np.median(y), rel=0.01)
    assert transform.inverse(prediction, residual_variance=v)[0, 0] == pytest.approx(y.mean(), rel=0.01)
    estimated = transform.residual_variance(np.full((len(y), 1), mu), y[:, None])
    assert estimated[0] == pytest.approx(v, rel=0.01)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"transforms\[1\]"):
        mm.TargetTransform(("identity", "log"))
    with pytest.raises(TypeError, match="transforms"):
        mm.TargetTransform("log1p")
    transform = mm.TargetTransform(("identity", "log1p"))
    with pytest.raises(ValueError, match=r"Y\[:, 1\] must be > -1"):
        transform.forward(np.array([[0.0, 2.0], [1.0, -3.0]]))
    with pytest.raises(ValueError, match="shape"):
        transform.forward(np.ones((3, 3)))
    with pytest.raises(ValueError, match="residual_variance"):
        transform.inverse(np.ones((2, 2)), residual_variance=[-1.0, 0.0])
