import subprocess
import sys

import pytest

from minimoe.cli import main
from minimoe.studies import gradcheck_table as selfcheck


def test_gradcheck_passes_every_row(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    rows = selfcheck.run()
    assert all(error < limit for _, _, error, limit in rows), [r for r in rows if not r[2] < r[3]]
    assert f"{len(rows)}/{len(rows)} gradients within their limit" in out
    for label in ("Linear", "Embedding", "Experts", "Gate", "SharedBottom", "OMoE", "MMoE", "MultiTaskLoss"):
        assert label in out
    assert "levels.0.experts.shared.W1" in out and "levels.0.gates.task2.hidden.layers.0.W" in out


def test_gradcheck_reports_a_broken_backward(monkeypatch, capsys):
    from minimoe.layers import Linear
    original = Linear.backward

    def broken(self, dy, input_grad=True):
        result = original(self, dy, input_grad)
        self._grads["b"] *= 2                                      # a wrong bias gradient
        return result

    monkeypatch.setattr(Linear, "backward", broken)
    assert main(["gradcheck"]) == 1
    assert " NO" in capsys.readouterr().out


def test_compare_prints_a_table(capsys):
    code = main(["compare", "--correlation", "0.5", "--runs", "2", "--epochs", "1", "--n-train", "300",
                 "--jobs", "1", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    for model in ("SharedBottom", "OMoE", "MMoE"):
        assert out.count(model) >= 1
    assert "MSE task 0" in out and "OMoE - MMoE" in out


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
