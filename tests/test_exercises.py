"""The lessons' exercise checks: an empty stub is "not done yet", a right answer passes, a wrong
one names the wrong entries and how far off they are."""

import numpy as np
import pytest

from minimoe.exercises import NOT_DONE, ExerciseError, attempt, check, check_gradient, is_done


def stub(x):
    raise NotImplementedError("write me")


def test_an_empty_stub_is_not_done(capsys):
    result = attempt("Exercise 9.1", stub, 1.0)
    assert result is NOT_DONE and not is_done(result) and not is_done((1.0, result))
    assert check("Exercise 9.1", result, np.ones(2)) is False
    x = np.ones(3)
    assert check_gradient("Exercise 9.1", result, lambda: x * 2, x) is False
    out = capsys.readouterr().out
    assert "Exercise 9.1: not done yet. The lesson goes on with the library's version" in out


def test_a_right_answer_passes(capsys):
    x = np.array([0.5, -1.0, 2.0])
    assert check("E", attempt("E", lambda v: v ** 2, x), x ** 2)
    assert check_gradient("E", 2 * x, lambda: x ** 2, x)
    assert "correct" in capsys.readouterr().out


def test_a_wrong_answer_names_the_entries():
    expected = np.arange(6.0).reshape(2, 3)
    wrong = expected.copy()
    wrong[1, 2] += 0.5
    with pytest.raises(ExerciseError, match=r"wrong at 1 of 6 entries. The worst is at \(1, 2\), off by 0.5"):
        check("E", wrong, expected, what="dW")
    with pytest.raises(ExerciseError, match=r"has shape \(3,\), it should have \(2, 3\)"):
        check("E", np.zeros(3), expected)
    with pytest.raises(ExerciseError, match=r"holds 1 non-finite entries of 6 \(the first at \(0, 1\)"):
        check("E", np.where(expected == 1, np.nan, expected), expected)


def test_a_wrong_gradient_is_caught_against_central_differences():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(ExerciseError, match="relative error .* against central differences"):
        check_gradient("E", 3 * x, lambda: x ** 2, x)
    with pytest.raises(ExerciseError, match="non-finite"):
        check_gradient("E", np.array([np.inf, 1.0, 1.0]), lambda: x ** 2, x)
