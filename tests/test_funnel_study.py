"""The funnel study: the watch-time model's head and loss against central differences, Spearman,
the paired intervals, training with early stopping on a criterion, tiny runs of both studies, and
the ``minimoe funnel`` command."""

import json
import math

import numpy as np
import pytest

import minimoe as mm
from minimoe.cli import main
from minimoe.gradcheck import THRESHOLD_BLOCK, THRESHOLD_MODEL, numerical_gradient, relative_error
from minimoe.studies import funnel as study
from minimoe.studies.experiments import mean_ci95

from .helpers import assert_gradients, assert_step_gradients

TINY = study.FunnelSettings(n_train=1_500, n_validation=800, n_test=1_000, cardinalities=(20, 5), n_dense=2,
                            bottom_units=(8,), n_experts=2, expert_units=(4,), tower_units=(4,), max_epochs=2,
                            patience=1, group_size=20, embedding_dim=2)


# ----------------------------------------------------------------------- the watch-time model

@pytest.mark.parametrize("scale", [1.0, 10.0, 50.0])
def test_the_watch_head_gradient(scale, rng):
    logits = scale * rng.uniform(-1, 1, size=(8, 2))
    logits[0], logits[1] = [scale, scale], [-scale, scale]
    assert_gradients(study.WatchHead(), logits, threshold=THRESHOLD_BLOCK)


def test_the_watch_head_is_the_log_of_the_expected_watch_time(rng):
    logits = rng.uniform(-5, 5, size=(20, 2))
    scores = study.WatchHead().forward(logits)
    np.testing.assert_array_equal(scores[:, 0], logits[:, 0])
    expected = 1 / (1 + np.exp(-logits[:, 0])) * np.exp(logits[:, 1])
    np.testing.assert_allclose(np.exp(scores[:, 1]), expected, rtol=1e-12)
    assert np.isfinite(study.WatchHead().forward(np.array([[-800.0, 3.0], [800.0, -3.0]]))).all()


def test_the_watch_model_gradients_with_an_input_layer(rng):
    inputs = mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)
    model = study.WatchESMM(None, bottom_units=(5,), tower_units=(3,), seed=1, inputs=inputs)
    X = mm.FeatureBatch(rng.integers(0, [4, 3], size=(16, 2)), rng.standard_normal((16, 2)))
    Y = np.column_stack([rng.integers(0, 2, 16), rng.exponential(1.0, 16)]).astype(float)
    Y[:, 1] *= Y[:, 0]                                                   # no watch time without a click
    report = assert_step_gradients(model, mm.MultiTaskLoss(model.tasks), X, Y)
    assert set(report) == set(model.params) | {"(live units)"}          # ids have no gradient
    assert_gradients(model, X, threshold=THRESHOLD_MODEL)


def test_the_watch_model_predicts_a_product_and_trains(rng):
    model = study.WatchESMM(3, bottom_units=(8,), tower_units=(4,), seed=0)
    X = rng.standard_normal((4_000, 3))
    p_click = 1 / (1 + np.exp(-(X[:, 0] - 1.5)))
    click = (rng.random(4_000) < p_click).astype(float)
    seconds = np.exp(X[:, 1] + 0.3 * rng.standard_normal(4_000))
    Y = np.column_stack([click, click * seconds])
    mm.fit(model, X, Y, epochs=8, batch_size=128, optimizer=mm.Adam(lr=1e-2), progress=False)
    p_ctr, watch = model.predict(X).T
    np.testing.assert_allclose(watch, p_ctr * model.predict_duration(X), rtol=1e-10)
    assert study.spearman(watch, p_click * np.exp(X[:, 1] + 0.045)) > 0.9


def test_the_poisson_loss(rng):
    task = study.PoissonTask("watch")
    scores, labels = rng.standard_normal(6), np.array([0.0, 0.0, 1.5, 3.0, 0.2, 0.0])
    numeric = numerical_gradient(lambda: task.loss(scores, labels), scores, np.ones(6))
    assert relative_error(task.loss_gradient(scores, labels), numeric) < THRESHOLD_BLOCK
    grid = np.linspace(-3, 3, 6001)                                       # the minimiser is log of the mean
    best = grid[np.argmin([task.loss(np.full(6, s), labels).mean() for s in grid])]
    assert best == pytest.approx(np.log(labels.mean()), abs=1e-3)
    with pytest.raises(ValueError, match=r"Y\[:, 1\] is a Poisson task, labels must be >= 0; got -1.0 at row 1"):
        task.check_labels("Y[:, 1]", np.array([0.0, -1.0]))


# ------------------------------------------------------------------------------ statistics

def test_spearman():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert study.spearman(a, a ** 3) == pytest.approx(1.0)
    assert study.spearman(a, -a) == pytest.approx(-1.0)
    assert study.spearman(a, [1.0, 1.0, 2.0, 2.0, 3.0]) == pytest.approx(np.corrcoef(a, [1.5, 1.5, 3.5, 3.5, 5])[0, 1])
    with pytest.raises(ValueError, match="1-D of equal length"):
        study.spearman(a, a[:3])


def _result(run, model_values, cell=(("click_rate", 0.08), ("selection_bias", 0.6))):
    return study.RunResult("cvr", run, dict(cell), {m: {"cvr_auc": v} for m, v in model_values.items()}, 0.0)


def test_paired_gaps_are_student_t_intervals_of_the_differences():
    a = [0.80, 0.82, 0.81, 0.84, 0.79]
    b = [0.78, 0.81, 0.78, 0.80, 0.78]                                  # differences 0.02 0.01 0.03 0.04 0.01
    results = [_result(run, {"ESMM": x, "clicked-only": y}) for run, (x, y) in enumerate(zip(a, b))]
    results.append(_result(9, {"ESMM": 0.5}))                          # unpaired: left out
    mean, ci, n = study.paired_gap(results, "ESMM", "clicked-only", "cvr_auc")
    gaps = np.subtract(a, b)
    assert n == 5 and mean == pytest.approx(0.022)
    assert ci == pytest.approx(2.776 * gaps.std(ddof=1) / math.sqrt(5))   # t(0.975, 4 degrees of freedom)
    assert (mean, ci) == pytest.approx(mean_ci95(gaps))
    unpaired = mean_ci95(a)[1] + mean_ci95(b)[1]
    assert ci < unpaired                                                # pairing removes the funnels' spread
    other_cell = _result(0, {"ESMM": 0.0, "clicked-only": 1.0}, cell=(("click_rate", 0.03), ("selection_bias", 0.6)))
    key = study.cell_key(results[0])
    assert study.paired_gap(results + [other_cell], "ESMM", "clicked-only", "cvr_auc", key)[:2] == (mean, ci)


# ------------------------------------------------------------------------------ training

def test_train_selected_keeps_the_best_epoch_and_stops_after_patience(rng):
    model = mm.SharedBottom(3, bottom_units=(4,), tower_units=(), tasks=("regression",), seed=0)
    X, Y = rng.standard_normal((64, 3)), rng.standard_normal((64, 1))
    criteria = iter([3.0, 1.0, 2.0, 2.5, 0.5])                         # best at epoch 2, then two worse
    snapshots = []

    def criterion(m):
        snapshots.append({k: v.copy() for k, v in m.params.items()})
        return next(criteria)

    settings = study.with_overrides(TINY, max_epochs=5, patience=2, batch_size=16)
    log = study.train_selected(model, X, Y, settings, 0, criterion, monitor=lambda m: 7.0)
    assert log["best_epoch"] == 2 and log["epochs"] == 4 and log["monitor"] == [7.0] * 4
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, snapshots[1][name])
    fixed = study.with_overrides(settings, fixed_epochs=3)
    snapshots.clear()
    criteria = iter([3.0, 1.0, 2.0])
    log = study.train_selected(model, X, Y, fixed, 0, criterion, scale=1.0)
    assert log["epochs"] == 3 and log["best_epoch"] == 3                  # no early stopping: the last epoch
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, snapshots[-1][name])


@pytest.mark.parametrize("kwargs, match", [(dict(n_train=0), "n_train"), (dict(lr=-1.0), "lr"),
                                           (dict(selection="best"), "selection"),
                                           (dict(fixed_epochs=0), "fixed_epochs"),
                                           (dict(ctcvr_weight=0.0), "ctcvr_weight"), (dict(seed=-1), "seed"),
                                           (dict(selection_bias=1.2), "selection_bias"),
                                           (dict(click_sharpness=float("nan")), "click_sharpness"),
                                           (dict(click_rate=0.0), "click_rate")])
def test_bad_settings(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        study.with_overrides(TINY, **kwargs)


# ------------------------------------------------------------------------------ tiny runs

def test_a_tiny_cvr_run_scores_every_model_on_the_entire_space():
    result = study.run_one(study.RunSpec("cvr", 0, (("selection_bias", 0.9),), study.CVR_MODELS), TINY)
    assert result.cell == {"selection_bias": 0.9, "click_sharpness": 3.0, "click_rate": 0.08}
    assert set(result.metrics) == set(study.CVR_MODELS) | {"CTR model"}
    for name in study.CVR_MODELS:
        metrics = result.metrics[name]
        for key in ("cvr_auc", "cvr_spearman", "cvr_auc_clicked", "ctcvr_auc", "ctr_auc", "mean_pcvr"):
            assert math.isfinite(metrics[key]) and -1 <= metrics[key] <= 1, (name, key)
        assert len(metrics["curve_cvr_auc"]) == metrics["epochs"] >= metrics["best_epoch"] >= 1
        assert len(metrics["reliability"]) == study.RELIABILITY_BINS and metrics["cvr_logit_sd"] >= 0
        assert metrics["true_mean_pcvr"] == result.metrics["ESMM"]["true_mean_pcvr"]   # one test split
    # the clicked-only model gets as many optimizer steps: its epochs stretch by impressions / clicks
    assert result.metrics["clicked-only"]["epochs"] > TINY.max_epochs
    # the same single-task CTR model gives both single-task models their pCTR
    assert result.metrics["clicked-only"]["ctr_auc"] == result.metrics["all-impressions"]["ctr_auc"]


def test_the_three_esmm_structures():
    """ESMM is the paper's (only the input layer shared), ESMM-SB adds a shared bottom, ESMM-NS
    shares nothing."""
    paper, bottom, separate = (study.build_model(name, TINY, 0) for name in ("ESMM", "ESMM-SB", "ESMM-NS"))
    assert paper.config["bottom_units"] == [] and bottom.config["bottom_units"] == list(TINY.bottom_units)
    assert separate.config["backbone"] == "none"
    assert not any(".bottom." in name for name in paper.params)
    assert sum(name.endswith("embeddings.0.W") for name in separate.params) == 2


def test_early_stopping_on_the_ctcvr_loss():
    settings = study.with_overrides(TINY, selection="ctcvr")
    result = study.run_one(study.RunSpec("cvr", 0, (), ("ESMM", "two-task", "clicked-only")), settings)
    reference = study.run_one(study.RunSpec("cvr", 0, (), ("ESMM", "two-task", "clicked-only")), TINY)
    # the ESMM and two-task models watch another criterion; the single-task model the same one
    assert result.metrics["ESMM"]["curve_criterion"] != reference.metrics["ESMM"]["curve_criterion"]
    assert result.metrics["clicked-only"]["cvr_auc"] == reference.metrics["clicked-only"]["cvr_auc"]
    assert set(study.SELECTIONS) == {"cvr", "own", "ctcvr"}


def test_a_tiny_size_sweep(tmp_path):
    specs = study.size_specs(2, sizes=(1_200, 2_400), funnels=(study.MAIN_CELL,))
    assert [s.n_train for s in specs] == [2_400, 2_400, 1_200, 1_200]          # the largest first
    results = study.run_many(specs, study.with_overrides(TINY, max_epochs=2), progress=False)
    assert {r.cell["n_train"] for r in results} == {1_200, 2_400}
    assert "CTR model" not in results[0].metrics and "ctcvr_auc" not in results[0].metrics["clicked-only"]
    assert all(r.extra["conversions_train"] > 0 for r in results)
    table = study.format_size_sweep(results)
    assert table.startswith("click rate 0.08, click sharpness 3, selection bias 0.9: entire-space CVR AUC")
    assert "1,200" in table and "ESMM - clicked-only" in table
    pytest.importorskip("matplotlib")
    from minimoe.studies import funnel_plots
    figure = funnel_plots.plot_size_sweep(results, TINY, tmp_path / "sizes.png")
    assert (tmp_path / "sizes.png").stat().st_size > 10_000 and len(figure.axes) == 3


def test_learning_curves_can_be_left_out():
    settings = study.with_overrides(TINY, curves=False)
    result = study.run_one(study.RunSpec("cvr", 0, (), ("ESMM", "two-task")), settings)
    assert result.metrics["ESMM"]["curve_cvr_auc"] == [] and len(result.metrics["ESMM"]["curve_criterion"]) >= 1
    reference = study.run_one(study.RunSpec("cvr", 0, (), ("ESMM", "two-task")), TINY)
    assert result.metrics["ESMM"]["cvr_auc"] == reference.metrics["ESMM"]["cvr_auc"]   # watching changes nothing


def test_a_tiny_watch_run():
    result = study.run_one(study.RunSpec("watch", 1, (("watch_quality", 0.9),), study.WATCH_MODELS), TINY)
    assert result.cell["watch_quality"] == 0.9
    assert set(result.metrics) == set(study.WATCH_ROWS)
    for name, metrics in result.metrics.items():
        assert 0 < metrics["ndcg10"] <= 1 and -1 <= metrics["spearman"] <= 1, name
    assert 0 <= result.metrics["clicked-rows, alpha on validation"]["alpha"] <= 1


def test_runs_are_the_same_in_parallel_and_paired_within_a_run():
    specs = [study.RunSpec("cvr", run, (), ("ESMM", "clicked-only")) for run in range(2)]
    serial = study.run_many(specs, TINY, jobs=1, progress=False)
    parallel = study.run_many(specs, TINY, jobs=2, progress=False)
    for a, b in zip(serial, parallel):
        assert a.metrics["ESMM"]["cvr_auc"] == b.metrics["ESMM"]["cvr_auc"]
        assert a.metrics["clicked-only"]["cvr_auc"] == b.metrics["clicked-only"]["cvr_auc"]
    assert serial[0].clicked_train != serial[1].clicked_train            # two funnels
    table = study.format_cvr_cell(serial, study.cell_key(serial[0]))
    assert "ESMM minus model, paired by run" in table and "clicked-only" in table


def test_study_specs():
    specs = study.study_specs(2, sweep_cells=((("selection_bias", 0.0),),), watch_qualities=(0.9,), mmoe=False)
    assert [(s.study, s.run, s.cell) for s in specs] == [
        ("cvr", 0, ()), ("cvr", 1, ()), ("cvr", 0, (("selection_bias", 0.0),)), ("cvr", 1, (("selection_bias", 0.0),)),
        ("watch", 0, (("watch_quality", 0.9),)), ("watch", 1, (("watch_quality", 0.9),))]
    assert "ESMM-MMoE" not in specs[0].models
    assert "ESMM-MMoE" in study.study_specs(1, (), ())[0].models


def test_the_default_funnel_and_the_sweep_cells():
    assert (study.FULL.selection_bias, study.FULL.click_sharpness, study.FULL.click_rate) == (0.9, 3.0, 0.08)
    keys = {tuple(sorted(study.FULL.funnel_options(dict(cell)).items())) for cell in study.SWEEP_CELLS}
    assert len(keys) == len(study.SWEEP_CELLS) and study.main_cell_key(study.FULL) not in keys
    milder = dict(study.FULL.funnel_options(dict(study.MILDER)))
    assert (milder["selection_bias"], milder["click_sharpness"]) == (0.6, 1.5)
    assert study.MILDER in study.SWEEP_CELLS and study.NO_BIAS in study.SWEEP_CELLS


def test_a_sweep_cell_equal_to_the_main_funnel_is_left_out():
    settings = study.with_overrides(TINY, click_sharpness=1.5, max_epochs=1)
    results = study.run_study(1, settings, sweep_cells=((("click_sharpness", 1.5),), study.NO_BIAS),
                              watch_qualities=(), mmoe=False, progress=False)
    assert [r.cell["selection_bias"] for r in results] == [0.9, 0.0]
    assert {r.cell["click_sharpness"] for r in results} == {1.5}


# ------------------------------------------------------------------------------ the command

def test_the_funnel_command(tmp_path, capsys):
    path = tmp_path / "funnel.json"
    code = main(["funnel", "--runs", "2", "--n-train", "1500", "--epochs", "1", "--jobs", "1", "--quiet",
                 "--save-json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    for text in ("click sharpness 3, selection bias 0.9", "selection bias 0:", "ESMM minus model, paired by run",
                 "clicked-only", "all-impressions", "two-task", "watch quality 0.9", "ESMM-style", "zero-filled x pCTR",
                 "alpha chosen on validation"):
        assert text in out, text
    saved = json.loads(path.read_text())
    assert saved["settings"]["n_train"] == 1500 and saved["settings"]["max_epochs"] == 1
    assert {r["study"] for r in saved["results"]} == {"cvr", "watch"}


def test_the_funnel_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from minimoe.studies import funnel_plots
    results = [study.run_one(study.RunSpec("cvr", run, cell, study.SWEEP_MODELS), TINY)
               for cell in ((), (("selection_bias", 0.0),)) for run in range(2)]
    results += [study.run_one(study.RunSpec("watch", run, (), study.WATCH_MODELS), TINY) for run in range(2)]
    figure = funnel_plots.plot_funnel(results, TINY, tmp_path / "funnel.png")
    assert (tmp_path / "funnel.png").stat().st_size > 10_000 and len(figure.axes) == 9


@pytest.mark.parametrize("argv, message", [(["--runs", "0"], "runs must be >= 1, got 0"),
                                           (["--lr", "0"], "lr must be a positive number"),
                                           (["--fixed-epochs", "0"], "fixed_epochs must be >= 1, got 0")])
def test_bad_funnel_options(argv, message, capsys):
    assert main(["funnel", "--main-only", "--jobs", "1", "--quiet"] + argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Funnels" not in captured.out      # refused before any work
