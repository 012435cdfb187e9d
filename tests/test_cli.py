import subprocess
import sys

import pytest

from minimoe.cli import main
from minimoe.studies import gradcheck_table as selfcheck


def test_gradcheck_passes_every_row_and_has_the_rows_a_check_needs(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    rows = selfcheck.run()
    assert all(error < limit for _, _, error, limit, _ in rows), [r for r in rows if not r[2] < r[3]]
    assert f"{len(rows)}/{len(rows)} rows within their limit" in out
    for label in ("Linear", "Embedding", "Experts", "Gate", "SharedBottom", "OMoE", "MMoE", "CGC", "PLE", "ESMM",
                  "MultiTaskLoss", "UncertaintyWeightedLoss", "GradNormLoss"):
        assert label in out
    assert "levels.0.experts.shared.W1" in out and "levels.0.gates.task2.hidden.layers.0.W" in out
    labels_with = {row: {label for label, name, *_ in rows if name == row}
                   for row in ("(input_grad=True path)", "(backward twice)", "(live units)")}
    checked = {label for label, *_ in rows if not label.startswith(("MultiTaskLoss", "UncertaintyWeighted",
                                                                      "balance_loss", "GradNormLoss"))
               and "fit step" not in label}
    for row, labels in labels_with.items():
        assert checked <= labels, (row, checked - labels)          # every block and model has the three rows
    assert {"UncertaintyWeightedLoss", "UncertaintyWeightedLoss, 40% NaN"} <= labels_with["(backward twice)"]
    steps = [label for label, *_ in rows if "fit step" in label and "40% NaN" in label]
    for model in ("SharedBottom", "OMoE", "MMoE", "CGC", "PLE", "ESMM on shared_bottom", "ESMM on mmoe"):
        for loss in ("MultiTaskLoss", "UncertaintyWeightedLoss", "GradNormLoss"):
            assert any(label.startswith(model) and loss in label for label in steps), (model, loss)
    zero_rows = [(label, name, note) for label, name, error, _, note in rows if error == 0.0
                 and not name.startswith("(") and "value" not in name]
    assert zero_rows and all(note.startswith("declared zero") for *_, note in zero_rows), zero_rows


def test_gradcheck_reports_a_broken_backward(monkeypatch, capsys):
    from minimoe.layers import Linear
    original = Linear.backward

    def broken(self, dy, input_grad=True):
        result = original(self, dy, input_grad)
        self.grads["b"][...] *= 2                                  # a wrong bias gradient
        return result

    monkeypatch.setattr(Linear, "backward", broken)
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert " NO" in out and "FAILED  Linear(5, 4)  b:" in out


def test_compare_prints_a_table(capsys):
    code = main(["compare", "--correlation", "0.5", "--runs", "2", "--epochs", "1", "--n-train", "300",
                 "--jobs", "1", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    for model in ("SharedBottom", "OMoE", "MMoE"):
        assert out.count(model) >= 1
    assert "MSE task 0" in out and "OMoE - MMoE" in out


def test_compare_runs_both_regimes_by_default(monkeypatch, capsys, tmp_path):
    """The default run: the paper's sizes, then the narrow experts, each named, sized and read against
    the three claims (the study itself shrunk to a few seconds here)."""
    from minimoe.studies import experiments as ex
    shrink = dict(n_features=10, n_train=300, n_test=200, epochs=1)
    for name, regime in ex.REGIMES.items():
        monkeypatch.setitem(ex.REGIMES, name, ex.Regime(name, ex.with_overrides(regime.quick, **shrink),
                                                        regime.full, regime.description))
    assert main(["compare", "--correlations", "1", "0", "--runs", "3", "--jobs", "1", "--quiet",
                 "--save-json", str(tmp_path / "runs.json")]) == 0
    out = capsys.readouterr().out
    assert "Regime 'paper'" in out and "Regime 'narrow'" in out and "both regimes in" in out
    assert "bottom_units=[113]" in out and "n_experts=2, expert_units=[1]" in out
    assert out.count("Claim 2, OMoE falls behind MMoE") == 2 and out.count("Claim 1") == 2
    import json
    rows = json.loads((tmp_path / "runs.json").read_text())
    assert {row["regime"] for row in rows} == {"paper", "narrow"} and len(rows) == 2 * 2 * 3 * 3


def test_compare_any_models_with_the_single_task_baseline(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code = main(["compare", "--models", "SingleTask", "MMoE", "CGC", "PLE", "--correlations",
                 "1", "0", "--runs", "2", "--epochs", "1", "--n-train", "300", "--jobs", "1", "--quiet",
                 "--save-json", str(tmp_path / "runs.json"), "--plot", str(tmp_path / "loss.png"),
                 "--usage-plot", str(tmp_path / "usage.png")])
    assert code == 0
    out = capsys.readouterr().out
    assert "Regime 'narrow'" not in out
    for text in ("CGC - MMoE", "PLE - MMoE", "SingleTask - MMoE", "gain task 1", "own share task 0",
                 "n_shared_experts=4, n_task_experts=2, n_levels=2, expert_units=[13]", "14,390 parameters"):
        assert text in out, text
    assert "Claim" not in out                                  # no Shared-Bottom or OMoE to test them with
    assert (tmp_path / "loss.png").stat().st_size > 10_000 and (tmp_path / "usage.png").stat().st_size > 10_000


def test_seesaw_command(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code = main(["seesaw", "--models", "MMoE", "CGC", "--correlation", "0.5", "--runs", "2", "--epochs", "1",
                 "--n-train", "300", "--scale", "1", "3", "--noise", "0.1", "0.5", "--jobs", "1", "--quiet",
                 "--plot", str(tmp_path / "gains.png"), "--save-json", str(tmp_path / "runs.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "SingleTask" in out and "label scale c (1.0, 3.0), noise sd (0.1, 0.5)" in out
    assert "gain task 0" in out and "Seesaw (a task gains while another loses" in out
    assert (tmp_path / "gains.png").stat().st_size > 10_000
    import json
    assert {row["model"] for row in json.loads((tmp_path / "runs.json").read_text())} == {"SingleTask", "MMoE", "CGC"}


@pytest.mark.parametrize("argv, message", [
    (["compare", "--models", "ESMM", "--runs", "1"], "binary click -> conversion funnel"),
    (["seesaw", "--noise", "0.1", "-1", "--runs", "1"], "noise_std must be a positive number or 0"),
])
def test_study_commands_refuse_what_they_cannot_run(argv, message, capsys):
    assert main(argv + ["--jobs", "1", "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_compare_rejects_a_bad_correlation(capsys):
    assert main(["compare", "--correlation", "1.5", "--runs", "1", "--jobs", "1", "--quiet"]) == 2
    assert "correlations must lie in [-1, 1], got 1.5" in capsys.readouterr().err


def test_the_installed_command_runs():
    result = subprocess.run([sys.executable, "-m", "minimoe.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "gradcheck" in result.stdout and "compare" in result.stdout


@pytest.mark.parametrize("argv", [["compare", "--jobs", "0"], ["experts", "--runs", "0", "--jobs", "1"]])
def test_bad_study_options(argv, capsys):
    assert main(argv + ["--quiet"]) == 2
    assert "must be" in capsys.readouterr().err


def test_help_lists_every_command_on_one_line_each(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    for command in ("gradcheck", "compare", "seesaw", "experts", "census", "funnel"):
        mine = [line for line in lines if line.strip().startswith(command + " ")]
        assert len(mine) == 1 and len(mine[0].split()) > 2, f"{command}: {mine}"
