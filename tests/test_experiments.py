import math

import numpy as np
import pytest

from minimoe.studies import experiments as ex

TINY = ex.Settings(n_features=10, n_train=300, n_test=200, n_experts=3, expert_units=(4,), bottom_units=(6,),
                   tower_units=(3,), epochs=2, batch_size=64)


def test_parallel_and_serial_runs_are_identical():
    serial = ex.relatedness((1.0, 0.0), runs=2, settings=TINY, jobs=1, progress=False)
    parallel = ex.relatedness((1.0, 0.0), runs=2, settings=TINY, jobs=2, progress=False)
    assert [(r.model, r.correlation, r.run, r.test_mse) for r in serial] == \
           [(r.model, r.correlation, r.run, r.test_mse) for r in parallel]


def test_models_of_one_run_share_the_data_set_and_runs_differ():
    data_a, model_a = ex._seeds(TINY, ex.RunSpec("OMoE", 0.5, 1))
    data_b, model_b = ex._seeds(TINY, ex.RunSpec("MMoE", 0.5, 1))
    data_c, _ = ex._seeds(TINY, ex.RunSpec("MMoE", 0.5, 2))
    draw = lambda seq: np.random.default_rng(seq).integers(1 << 30)   # noqa: E731
    assert draw(data_a) == draw(data_b) != draw(data_c)
    assert draw(model_a) != draw(model_b)


def test_summaries_and_table():
    results = ex.relatedness((0.5,), runs=3, settings=TINY, jobs=1, progress=False)
    summary = ex.summarize(results)
    assert set(summary) == {(m, 0.5) for m in ex.MODELS}
    losses = [r.test_loss for r in results if r.model == "MMoE"]
    assert summary[("MMoE", 0.5)]["mean"] == pytest.approx(np.mean(losses))
    gaps = ex.paired_gaps(results, "OMoE", "MMoE")
    omoe = [r.test_loss for r in results if r.model == "OMoE"]
    assert gaps[0.5][0] == pytest.approx(np.mean(np.subtract(omoe, losses)))
    table = ex.format_table(results)
    assert "OMoE - MMoE" in table and "SharedBottom" in table


def test_mean_ci95_uses_student_t():
    mean, half = ex.mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert math.isnan(ex.mean_ci95([1.0])[1])


def test_experts_sweep_varies_the_number_of_experts():
    results = ex.experts_sweep((1, 2), correlation=0.5, runs=1, settings=TINY, jobs=1, progress=False)
    assert sorted((r.model, r.n_experts) for r in results) == [("MMoE", 1), ("MMoE", 2), ("OMoE", 1), ("OMoE", 2)]


@pytest.mark.parametrize("call, match", [
    (lambda: ex.relatedness((1.5,), runs=1, settings=TINY, progress=False), r"correlations must lie in \[-1, 1\]"),
    (lambda: ex.relatedness((0.5,), runs=0, settings=TINY, progress=False), "runs must be >= 1"),
    (lambda: ex.relatedness((0.5,), models=("MoE",), runs=1, settings=TINY, progress=False), "models must be among"),
    (lambda: ex.experts_sweep((0,), runs=1, settings=TINY, progress=False), "n_experts must be >= 1"),
    (lambda: ex.with_overrides(TINY, lr=-1.0), "lr must be a positive number"),
    (lambda: ex.with_overrides(TINY, epochs=0), "epochs must be >= 1"),
    (lambda: ex.with_overrides(TINY, scale=-1.0), "scale must be a positive number"),
    (lambda: ex.with_overrides(TINY, seed=-3), "seed must be an int >= 0"),
    (lambda: ex.with_overrides(TINY, model_lr=(("MoE", 1e-3),)), "model_lr names an unknown model"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plots_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    from minimoe.studies import plots
    results = ex.relatedness((1.0, 0.0), runs=2, settings=TINY, jobs=1, progress=False)
    plots.plot_relatedness(results, tmp_path / "relatedness.png")
    sweep = ex.experts_sweep((1, 2), runs=2, settings=TINY, jobs=1, progress=False)
    plots.plot_experts(sweep, tmp_path / "experts.png")
    assert (tmp_path / "relatedness.png").stat().st_size > 10_000
    assert (tmp_path / "experts.png").stat().st_size > 10_000


def test_claim_1_mixtures_beat_shared_bottom_at_correlation_half():
    """Claim 1 of the paper at p = 0.5, on a seeded sweep small enough for the test suite.

    Measured with exactly these settings for base seeds 0, 1, 2, 3: Shared-Bottom - MMoE =
    0.126, 0.137, 0.139, 0.126 (95% CI half-widths 0.023-0.034) and Shared-Bottom - OMoE = 0.104,
    0.116, 0.130, 0.130. Asserted: each gap exceeds 0.05 and its 95% interval excludes 0.

    Claim 2 (the OMoE - MMoE gap grows as the correlation falls) is not asserted here: at this size
    the change of the gap between p = 1 and p = 0.5 was +0.039, +0.012, +0.018 and -0.013 over the
    same four seeds, i.e. within the seed-to-seed noise. The README reports it from the full study.
    """
    settings = ex.with_overrides(ex.QUICK, n_train=5000, n_test=2000, epochs=15, seed=0)
    results = ex.relatedness((0.5,), runs=6, settings=settings, jobs=2, progress=False)
    for mixture in ("MMoE", "OMoE"):
        gap, half_width = ex.paired_gaps(results, "SharedBottom", mixture)[0.5]
        assert gap > 0.05 and gap - half_width > 0, (mixture, gap, half_width)
