import numpy as np
import pytest

import minimoe as mm
from minimoe.data.synthetic import orthogonal_unit_vectors


def test_shapes_dtypes_and_seeds():
    X, Y = mm.data.make_synthetic(n_samples=50, n_features=7, correlation=0.3, seed=1)
    assert X.shape == (50, 7) and Y.shape == (50, 2) and X.dtype == Y.dtype == np.float64
    X2, Y2 = mm.data.make_synthetic(n_samples=50, n_features=7, correlation=0.3, seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert not np.array_equal(Y, mm.data.make_synthetic(n_samples=50, n_features=7, correlation=0.3, seed=2)[1])
    X32, _ = mm.data.make_synthetic(n_samples=5, dtype=np.float32)
    assert X32.dtype == np.float32


def test_orthogonal_unit_vectors():
    u1, u2 = orthogonal_unit_vectors(100, np.random.default_rng(0))
    assert abs(u1 @ u2) < 1e-12
    assert np.linalg.norm(u1) == pytest.approx(1) and np.linalg.norm(u2) == pytest.approx(1)


def label_correlation(p, seeds=range(4), n=20_000):
    return np.mean([np.corrcoef(mm.data.make_synthetic(n, correlation=p, seed=s)[1].T)[0, 1] for s in seeds])


def test_label_correlation_is_monotone_in_p():
    measured = [label_correlation(p) for p in (1.0, 0.9, 0.5, 0.0, -0.5)]
    assert measured[0] > 0.98                                     # identical tasks but for the noise
    assert all(a > b for a, b in zip(measured, measured[1:])), measured
    assert abs(measured[3]) < 0.05


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(correlation=1.5), ValueError, r"correlation must lie in \[-1, 1\], got 1.5"),
    (dict(correlation=-1.01), ValueError, "correlation must lie in"),
    (dict(correlation="high"), TypeError, "correlation must be a real number"),
    (dict(n_samples=0), ValueError, "n_samples must be >= 1"),
    (dict(n_features=1), ValueError, "n_features must be >= 2"),
    (dict(noise_std=-1.0), ValueError, "noise_std must be >= 0"),
])
def test_generator_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        mm.data.make_synthetic(**kwargs)


def test_train_test_split():
    X, Y = np.arange(20.0).reshape(10, 2), np.arange(10.0).reshape(10, 1)
    X_train, X_test, Y_train, Y_test = mm.data.train_test_split(X, Y, test_size=0.3, seed=0)
    assert len(X_train) == 7 and len(X_test) == 3
    np.testing.assert_array_equal(X_test[:, 0] / 2, Y_test[:, 0])   # rows stay paired
    assert sorted(np.r_[Y_train[:, 0], Y_test[:, 0]]) == list(range(10))
    with pytest.raises(ValueError, match="test_size must be"):
        mm.data.train_test_split(X, Y, test_size=10)
    with pytest.raises(ValueError, match="same number of rows"):
        mm.data.train_test_split(X, Y[:5], test_size=2)


def test_mixed_tasks_shapes_rates_and_tails():
    X, Y, truth = mm.data.make_mixed_tasks(50_000, n_features=20, correlation=0.5, seed=0, return_truth=True)
    assert X.shape == (50_000, 20) and Y.shape == (50_000, 2)
    assert set(np.unique(Y[:, 0])) == {0.0, 1.0}
    assert abs(Y[:, 0].mean() - 0.2) < 0.01                       # click_rate
    assert abs(truth["click_probability"].mean() - 0.2) < 1e-6    # the offset is solved exactly
    assert (Y[:, 1] > 0).all()
    assert abs(np.median(Y[:, 1]) / 60 - 1) < 0.1                 # duration_median
    assert Y[:, 1].mean() > 1.5 * np.median(Y[:, 1])              # heavy right tail (log-normal)
    assert Y[:, 1].var() > 1000 * Y[:, 0].var()                   # the scale gap the benchmark is about
    np.testing.assert_allclose(truth["expected_duration"].mean(), Y[:, 1].mean(), rtol=0.05)


@pytest.mark.parametrize("correlation, low, high", [(1.0, 0.9, 1.0), (0.5, 0.3, 0.6), (0.0, -0.05, 0.05)])
def test_mixed_tasks_relatedness_follows_the_knob(correlation, low, high):
    _, _, truth = mm.data.make_mixed_tasks(20_000, correlation=correlation, seed=1, return_truth=True)
    r = np.corrcoef(truth["click_probability"], np.log(truth["expected_duration"]))[0, 1]
    assert low <= r <= high, r


def test_mixed_tasks_are_seeded_and_checked():
    a = mm.data.make_mixed_tasks(100, seed=3)
    b = mm.data.make_mixed_tasks(100, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for kwargs, name in [({"click_rate": 1.0}, "click_rate"), ({"duration_median": 0}, "duration_median"),
                         ({"correlation": 2.0}, "correlation"), ({"duration_noise": -1}, "duration_noise")]:
        with pytest.raises(ValueError, match=name):
            mm.data.make_mixed_tasks(10, **kwargs)


def test_per_task_scale_and_noise():
    """One number draws what it always drew; a pair sets each task's scale c_k and noise sd."""
    X, Y = mm.data.make_synthetic(4000, 20, correlation=0.0, seed=3)
    X2, Y2 = mm.data.make_synthetic(4000, 20, correlation=0.0, seed=3, scale=(1.0, 1.0), noise_std=(0.1, 0.1))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    _, clean = mm.data.make_synthetic(4000, 20, correlation=0.0, seed=3, noise_std=(0.1, 0.0))
    np.testing.assert_array_equal(clean[:, 0], Y[:, 0])             # task 0 untouched
    assert np.std(Y[:, 1] - clean[:, 1]) == pytest.approx(0.1, rel=0.05)
    _, scaled = mm.data.make_synthetic(4000, 20, correlation=0.0, seed=3, scale=(1.0, 2.0))
    np.testing.assert_array_equal(scaled[:, 0], Y[:, 0])
    assert scaled[:, 1].var() > 2.5 * Y[:, 1].var()
    with pytest.raises(ValueError, match=r"scale must be one number or one per task \(2\)"):
        mm.data.make_synthetic(10, scale=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"noise_std\[1\] must be >= 0"):
        mm.data.make_synthetic(10, noise_std=(0.1, -1.0))
