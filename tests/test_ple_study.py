"""The CGC/PLE study tools: matched sizes, the single-task baseline and its pairing, per-task gains
and the seesaw verdict, expert utilization per level, the regimes and the claims report."""

import json
import math

import numpy as np
import pytest

import minimoe as mm
from minimoe.studies import experiments as ex

TINY = ex.Settings(n_features=10, n_train=300, n_test=200, n_experts=4, expert_units=(4,), bottom_units=None,
                   tower_units=(3,), epochs=2, batch_size=64, shared_experts=2, task_experts=1)
EVERY = ("SingleTask", "SharedBottom", "OMoE", "MMoE", "CGC", "PLE")


@pytest.fixture(scope="module")
def tiny_results():
    return ex.relatedness((1.0, 0.0), runs=3, models=EVERY, settings=TINY, jobs=1, progress=False)


def mmoe_count(settings):
    return mm.MMoE(settings.n_features, n_experts=settings.n_experts, expert_units=settings.expert_units,
                   tower_units=settings.tower_units).n_params()


@pytest.mark.parametrize("settings", [ex.FULL, ex.QUICK, ex.SEESAW_FULL, TINY], ids=["full", "quick", "seesaw", "tiny"])
def test_cgc_ple_and_single_task_have_about_mmoe_s_parameter_count(settings):
    counts = ex.parameter_counts(("SingleTask", "MMoE", "CGC", "PLE"), settings)
    target = mmoe_count(settings)
    assert counts["MMoE"][0] == target
    for name in ("SingleTask", "CGC", "PLE"):
        assert abs(counts[name][0] / target - 1) < 0.15, (name, counts[name], target)


def test_the_paper_sized_counts():
    """At the paper's sizes (D = 100, 8 experts of 16 units, towers of 8) the counts are within 3.1%."""
    counts = ex.parameter_counts(EVERY, ex.FULL)
    assert counts["MMoE"][0] == 14_834
    assert counts["CGC"] == (14_430, {"n_shared_experts": 4, "n_task_experts": 2, "expert_units": (16,)})
    assert counts["PLE"] == (14_390, {"n_shared_experts": 4, "n_task_experts": 2, "n_levels": 2,
                                      "expert_units": (13,)})
    assert counts["SingleTask"] == (14_850, {"n_experts": 4, "expert_units": (17,)})
    assert counts["SharedBottom"][1] == {"bottom_units": (113,)}          # FULL keeps the paper's bottom
    assert ex.model_options("SharedBottom", ex.SEESAW_FULL) == {"bottom_units": (126,)}   # matched when None
    text = ex.describe_sizes(("MMoE", "CGC"), ex.FULL)
    assert "14,834 parameters (+0.0% vs MMoE)" in text and "14,430 parameters (-2.7% vs MMoE)" in text


def test_every_run_records_its_parameter_count(tiny_results):
    counts = ex.parameter_counts(EVERY, TINY)
    for r in tiny_results:
        assert r.n_params == counts[r.model][0], r.model


def test_the_single_task_baseline_is_one_model_per_task_on_the_run_s_data():
    """Each single-task model trains on its own task only, on the same data set as the multi-task
    models of that run: retraining it by hand on column k reproduces its test MSE exactly."""
    spec = ex.RunSpec("SingleTask", 0.5, 1)
    result = ex.run_one(spec, TINY)
    data_seed, model_seed = ex._seeds(TINY, spec)
    X, Y = mm.data.make_synthetic(TINY.n_train + TINY.n_test, TINY.n_features, 0.5,
                                  seed=np.random.default_rng(data_seed), scale=TINY.scale, noise_std=TINY.noise_std)
    options = ex.model_options("SingleTask", TINY)
    for k, task_seed in enumerate(model_seed.spawn(2)):
        rng = np.random.default_rng(task_seed)
        model = mm.MMoE(TINY.n_features, tower_units=TINY.tower_units, tasks=("regression",), seed=rng, **options)
        mm.fit(model, X[:TINY.n_train], Y[:TINY.n_train, k:k + 1], epochs=TINY.epochs, batch_size=TINY.batch_size,
               optimizer=mm.Adam(lr=TINY.lr), seed=rng, progress=False)
        mse = mm.evaluate(model, X[TINY.n_train:], Y[TINY.n_train:, k:k + 1])["task0"]["mse"]
        assert result.test_mse[k] == mse
    assert result.test_loss == pytest.approx(sum(result.test_mse))
    # The multi-task models of that run see the same data set; the baseline has a seed of its own.
    assert ex._seeds(TINY, ex.RunSpec("MMoE", 0.5, 1))[0].entropy == data_seed.entropy
    draw = lambda seq: np.random.default_rng(seq).integers(1 << 30)   # noqa: E731
    assert len({draw(ex._seeds(TINY, ex.RunSpec(m, 0.5, 1))[1]) for m in EVERY}) == len(EVERY)


def test_gains_are_paired_by_run(tiny_results):
    gains = ex.task_gains(tiny_results)
    assert set(gains) == {(m, c) for m in EVERY[1:] for c in (1.0, 0.0)}
    for model in ("MMoE", "CGC"):
        base = {r.run: r.test_mse for r in tiny_results if r.model == "SingleTask" and r.correlation == 0.0}
        mine = {r.run: r.test_mse for r in tiny_results if r.model == model and r.correlation == 0.0}
        for k in range(2):
            differences = [base[run][k] - mine[run][k] for run in range(3)]
            mean, half = ex.mean_ci95(differences)
            assert gains[(model, 0.0)][k][:2] == pytest.approx((mean, half))
            assert gains[(model, 0.0)][k][2] == pytest.approx(mean / np.mean([base[run][k] for run in range(3)]))


def test_gains_pair_only_runs_that_share_a_data_set():
    def result(model, run, mse):
        return ex.RunResult(model, 0.5, run, 2, mse, sum(mse), 0.0)
    results = [result("SingleTask", 0, (1.0, 1.0)), result("SingleTask", 1, (3.0, 3.0)),
               result("MMoE", 0, (0.5, 2.0)), result("MMoE", 1, (2.5, 4.0)), result("MMoE", 2, (0.0, 0.0))]
    (g0, h0, r0), (g1, h1, r1) = ex.task_gains(results)[("MMoE", 0.5)]
    assert (g0, g1) == (0.5, -1.0) and h0 == 0.0 and h1 == 0.0      # run 2 has no baseline: left out
    assert r0 == pytest.approx(0.25) and r1 == pytest.approx(-0.5)
    assert ex.seesaw_verdict(ex.task_gains(results)[("MMoE", 0.5)]) == "seesaw"


@pytest.mark.parametrize("gains, verdict", [
    ([(0.1, 0.05, 0), (-0.1, 0.05, 0)], "seesaw"),
    ([(0.1, 0.05, 0), (0.1, 0.05, 0)], "all gain"),
    ([(-0.1, 0.05, 0), (-0.1, 0.05, 0)], "all lose"),
    ([(0.1, 0.05, 0), (0.01, 0.05, 0)], "gain / tie"),
    ([(-0.1, 0.05, 0), (0.01, 0.05, 0)], "lose / tie"),
    ([(0.01, 0.05, 0), (-0.01, 0.05, 0)], "no clear difference"),
    ([(0.1, math.nan, 0), (-0.1, math.nan, 0)], "no clear difference"),
])
def test_seesaw_verdict(gains, verdict):
    assert ex.seesaw_verdict(gains) == verdict


def test_tables(tiny_results):
    table = ex.format_table(tiny_results)
    for name in ("SingleTask - MMoE", "CGC - MMoE", "PLE - MMoE", "OMoE - MMoE", "SharedBottom - MMoE"):
        assert name in table
    gains = ex.format_gains(tiny_results)
    assert "gain task 0" in gains and "verdict" in gains and [line.split()[1:2] for line in
                                                              gains.splitlines()[1:-1]].count(["PLE"]) == 2
    usage = ex.format_usage(tiny_results)
    rows = [line.split() for line in usage.splitlines()[1:-1]]
    assert "own share task 1" in usage and [row[1:3] for row in rows].count(["PLE", "1"]) == 2   # x 2 correlations
    summary = ex.seesaw_summary(tiny_results)
    assert summary.count("\n") == 5 and "SingleTask" not in summary
    assert "no gains" in ex.format_gains([r for r in tiny_results if r.model != "SingleTask"])


def test_usage_is_recorded_per_level(tiny_results):
    for r in tiny_results:
        levels = {"SingleTask": 0, "SharedBottom": 0, "OMoE": 1, "MMoE": 1, "CGC": 1, "PLE": 2}[r.model]
        assert len(r.usage) == levels
        for entry in r.usage:
            weights = np.array(entry["experts"])
            np.testing.assert_allclose(weights.sum(axis=1), 1.0)
            if r.model in ("CGC", "PLE"):
                assert set(entry["groups"]) == {"shared", "task0", "task1"}
                for k in range(2):                                 # a gate never sees the other task's experts
                    assert np.all(weights[k, entry["groups"][f"task{1 - k}"]] == 0.0)
    rows = json.loads(json.dumps(ex.results_as_dicts(tiny_results)))  # every run's record is plain JSON ...
    assert ex.results_from_dicts(rows) == tiny_results                # ... and reads back as it was
    tagged = [dict(row, regime="a") for row in rows[:4]] + [dict(row, regime="b") for row in rows[4:]]
    assert ex.results_from_dicts(tagged, regime="a") == tiny_results[:4]


def test_own_share_equals_group_usage_for_task_groups(rng):
    model = mm.PLE(6, n_levels=2, n_shared_experts=2, n_task_experts=1, expert_units=(3,), tower_units=(2,), seed=0)
    X = rng.standard_normal((50, 6))
    for entry in ex.level_usage(model, X):
        names, shares = mm.analysis.group_usage(model, X, entry["level"])
        expected = [shares[k, names.index(f"task{k}")] for k in range(2)]
        np.testing.assert_allclose(ex.own_share(entry), expected)


def test_own_share_without_task_groups_is_the_unmatched_weight():
    entry = {"experts": [[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]], "groups": {"shared": [0, 1, 2]}}
    np.testing.assert_allclose(ex.own_share(entry), [0.4, 0.4])
    same = {"experts": [[0.5, 0.5], [0.5, 0.5]], "groups": {"shared": [0, 1]}}
    np.testing.assert_allclose(ex.own_share(same), [0.0, 0.0])


def fake(model, correlation, run, loss):
    return ex.RunResult(model, correlation, run, 2, (loss / 2, loss / 2), loss, 0.0)


def test_claims_report_reads_the_three_claims():
    rng = np.random.default_rng(0)
    results = []
    for p, omoe in ((1.0, 0.10), (0.0, 1.0)):
        for run in range(5):
            noise = rng.normal(0, 0.005)
            results += [fake("MMoE", p, run, 0.10 + noise), fake("OMoE", p, run, omoe + noise + rng.normal(0, 0.005)),
                        fake("SharedBottom", p, run, 0.30 + rng.normal(0, 0.05))]
    report = ex.claims_report(results)
    assert "Claim 1, MoE beats Shared-Bottom: partly" in report            # OMoE ties SB at p = 0
    assert "Claim 2, OMoE falls behind MMoE as tasks grow less related: shows" in report
    assert "Claim 3, Shared-Bottom varies more across runs: shows" in report
    identical = [fake(m, p, run, 0.1 + 0.01 * run) for p in (1.0, 0.0) for run in range(3) for m in ("OMoE", "MMoE")]
    ahead_once = [fake(m, p, run, 0.1 + 0.01 * run + (0.02 if (m, p) == ("OMoE", 0.5) else 0.0))
                  for p in (1.0, 0.5, 0.0) for run in range(3) for m in ("OMoE", "MMoE")]
    report = ex.claims_report(ahead_once)      # ahead in the middle only: no trend, and no claim 2
    assert "does not show (OMoE - MMoE" in report and "MMoE clearly ahead at 1/3 correlations: 0.5" in report
    assert "Claim 2, OMoE falls behind MMoE as tasks grow less related: does not show" in ex.claims_report(identical)
    assert ex.claims_report([fake("MMoE", 0.5, 0, 0.1)]) == ""


def test_regimes_keep_full_and_match_the_narrow_shared_bottom():
    assert ex.REGIMES["paper"].full is ex.FULL and ex.REGIMES["paper"].quick is ex.QUICK
    assert (ex.FULL.n_train, ex.FULL.n_test, ex.FULL.epochs, ex.FULL.n_experts, ex.FULL.bottom_units) == \
           (10_000, 5_000, 30, 8, (113,))
    narrow = ex.REGIMES["narrow"].quick
    assert (narrow.n_experts, narrow.expert_units) == (2, (1,))
    counts = ex.parameter_counts(("SharedBottom", "MMoE"), narrow)
    assert counts["MMoE"][0] == 656 and abs(counts["SharedBottom"][0] / 656 - 1) < 0.1
    assert "PLE             1,074 parameters (+63.7% vs MMoE)" in ex.describe_sizes(("PLE",), narrow)
    assert "(cannot be matched at these sizes)" in ex.describe_sizes(("PLE",), narrow)
    assert "cannot be matched" not in ex.describe_sizes(ex.STUDY_MODELS, ex.FULL)


def test_per_task_data_settings_reach_the_generator():
    settings = ex.with_overrides(TINY, scale=(1.0, 3.0), noise_std=(0.1, 0.0))
    spec = ex.RunSpec("MMoE", 0.0, 0)
    X, Y = mm.data.make_synthetic(TINY.n_train + TINY.n_test, TINY.n_features, 0.0,
                                  seed=np.random.default_rng(ex._seeds(settings, spec)[0]), scale=(1.0, 3.0),
                                  noise_std=(0.1, 0.0))
    assert Y[:, 1].var() > 2 * Y[:, 0].var()
    assert ex.run_one(spec, settings).test_mse[1] > ex.run_one(spec, TINY).test_mse[1]


@pytest.mark.parametrize("overrides, match", [
    (dict(scale=(1.0, 2.0, 3.0)), "scale must be a positive number"),
    (dict(noise_std=-0.1), "noise_std must be a positive number or 0"),
    (dict(shared_experts=-1), "shared_experts must be an int >= 0"),
    (dict(shared_experts=0, task_experts=0), "cannot both be 0"),
    (dict(n_levels=0), "n_levels must be >= 1"),
])
def test_bad_settings(overrides, match):
    with pytest.raises(ValueError, match=match):
        ex.with_overrides(TINY, **overrides)


def test_esmm_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="binary click -> conversion funnel"):
        ex.relatedness((0.5,), runs=1, models=("ESMM",), settings=TINY, progress=False)


def test_study_plots_are_drawn(tiny_results, tmp_path):
    pytest.importorskip("matplotlib")
    from minimoe.studies import plots
    plots.plot_relatedness(tiny_results, tmp_path / "relatedness.png")
    plots.plot_gains(tiny_results, tmp_path / "gains.png")
    plots.plot_usage([r for r in tiny_results if r.model in ("MMoE", "CGC", "PLE")], tmp_path / "usage.png")
    for name in ("relatedness", "gains", "usage"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_failed_runs_are_the_sporadic_ones():
    from minimoe.studies import plots
    results = [fake("PLE", 0.0, run, 1.3 if run == 2 else 0.06) for run in range(8)]
    results += [fake("OMoE", 0.0, run, 1.2) for run in range(8)] + [fake("MMoE", 0.0, run, 0.05) for run in range(8)]
    assert plots.failed_runs(results) == {("PLE", 0.0): [2]}    # OMoE always fails: its mean says so
