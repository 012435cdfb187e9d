"""The funnel generator: rates, what is observed, the selection-bias knob, the truth it returns, and
ESMM's labels with their errors."""

import numpy as np
import pytest

import minimoe as mm


def test_rates_and_what_is_observed():
    X, Y, truth = mm.data.make_funnel(40_000, click_rate=0.06, conversion_rate=0.3, watch_time=True, seed=0,
                                      return_truth=True)
    click = Y[:, 0] == 1
    assert X.categorical.shape == (40_000, 3) and X.numeric.shape == (40_000, 6) and Y.shape == (40_000, 3)
    assert truth.p_click.mean() == pytest.approx(0.06, abs=1e-6)
    assert truth.p_conversion.mean() == pytest.approx(0.3, abs=1e-6)
    assert abs(click.mean() - 0.06) < 0.005
    assert np.isnan(Y[~click, 1]).all() and np.isnan(Y[~click, 2]).all()     # seen only after a click
    np.testing.assert_array_equal(Y[click, 1], truth.conversion[click])
    assert (Y[click, 2] > 0).all()
    np.testing.assert_allclose(truth.expected_watch, truth.p_click * truth.expected_seconds)
    ids = X.categorical[:, 0]
    assert np.bincount(ids, minlength=200)[0] > 10 * np.bincount(ids, minlength=200)[-1]   # popular and rare ids


def test_selection_bias_is_the_knob_of_how_unfair_the_clicked_rows_are():
    gaps = []
    for bias in (0.0, 0.5, 0.9):
        _, Y, truth = mm.data.make_funnel(40_000, selection_bias=bias, seed=1, return_truth=True)
        click = Y[:, 0] == 1
        gaps.append(truth.p_conversion[click].mean() - truth.p_conversion[~click].mean())
    assert abs(gaps[0]) < 0.02 < gaps[1] < gaps[2]                   # clicked rows convert more as bias grows


def test_the_default_funnel_barely_covers_the_lower_quality_half():
    shares = {}
    for name, knobs in (("default", {}), ("milder", dict(selection_bias=0.6, click_sharpness=1.5)),
                        ("no bias", dict(selection_bias=0.0))):
        _, Y, truth = mm.data.make_funnel(40_000, seed=4, return_truth=True, **knobs)
        click, worse = Y[:, 0] == 1, truth.p_conversion < np.median(truth.p_conversion)
        assert abs(click.mean() - 0.08) < 0.005
        shares[name] = click[worse].sum() / click.sum()              # share of the clicks from the worse half
    assert shares["default"] < 0.05 and 0.15 < shares["milder"] < 0.35 and 0.4 < shares["no bias"] < 0.6


def test_watch_quality_is_the_share_of_the_watch_time_that_quality_makes():
    correlations = []
    for share in (0.0, 0.5, 1.0):
        _, _, truth = mm.data.make_funnel(20_000, watch_time=True, watch_quality=share, seed=2, return_truth=True)
        quality = np.log(truth.p_conversion / (1 - truth.p_conversion))       # conversion's logit: a multiple of q
        correlations.append(np.corrcoef(quality, np.log(truth.expected_seconds))[0, 1])
    assert abs(correlations[0]) < 0.02 and correlations[1] == pytest.approx(np.sqrt(0.5), abs=0.02)
    assert correlations[2] == pytest.approx(1.0, abs=1e-9)


def test_same_seed_same_funnel():
    a, b = mm.data.make_funnel(500, seed=3), mm.data.make_funnel(500, seed=3)
    np.testing.assert_array_equal(a[0].categorical, b[0].categorical)
    np.testing.assert_array_equal(a[1], b[1])


def test_esmm_labels():
    Y = np.array([[1, 1], [1, 0], [0, np.nan], [0, np.nan]], dtype=float)
    np.testing.assert_array_equal(mm.data.esmm_labels(Y), [[1, 1], [1, 0], [0, 0], [0, 0]])


@pytest.mark.parametrize("Y, match", [
    ([[1, 1], [0.5, np.nan]], r"Y\[:, 0\] \(click\) must be 0 or 1, got 0.5 at row 1"),
    ([[1, 1], [0, 1]], r"Y\[:, 1\] \(conversion\) is observed \(1.0\) at row 1, which has no click"),
    ([[1, 0], [1, 0], [0, np.nan]], "holds no conversion among the 2 clicked rows"),
    ([[1, np.nan], [1, 1]], r"must be 0 or 1 on a clicked row, got nan at row 0"),
    ([1, 0], r"Y must be \(N, 2 or more\)"),
])
def test_esmm_labels_reject_bad_funnels(Y, match):
    with pytest.raises(ValueError, match=match):
        mm.data.esmm_labels(np.array(Y, dtype=float))


@pytest.mark.parametrize("kwargs, match", [(dict(click_rate=0.0), "click_rate"),
                                           (dict(selection_bias=1.5), "selection_bias"),
                                           (dict(watch_quality=-0.1), "watch_quality"),
                                           (dict(cardinalities=(0,)), r"cardinalities\[0\]")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mm.data.make_funnel(100, **kwargs)
