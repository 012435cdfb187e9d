"""The lessons' exercise checks: an empty stub is "not done yet", a right answer passes, a wrong
one names the wrong entries and how far off they are."""

import numpy as np
import pytest

from minimoe.exercises import NOT_DONE, ExerciseError, attempt, check, check_blocks, check_gradient, diagnose, is_done


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
    with pytest.raises(ExerciseError, match="Relative error .* against central differences"):
        check_gradient("E", 3 * x, lambda: x ** 2, x)
    with pytest.raises(ExerciseError, match="non-finite"):
        check_gradient("E", np.array([np.inf, 1.0, 1.0]), lambda: x ** 2, x)


@pytest.mark.parametrize("factor, words", [(2.0, "2"), (0.5, "1/2"), (-1.0, "-1"), (1.5, "1.5"),
                                           (np.sqrt(19 / 20), r"sqrt\(\(n-1\)/n\) with n = 20"),
                                           (np.sqrt(20 / 19), r"sqrt\(n/\(n-1\)\) with n = 20")])
def test_a_constant_factor_is_said(factor, words):
    expected = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])
    with pytest.raises(ExerciseError, match=rf"^E: dW is wrong .* It looks like a constant factor of {words}"):
        check("E", factor * expected, expected, what="dW")


def test_offsets_transposes_and_zeros_are_said():
    expected = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0], [2.0, 1.0, 0.5]])
    assert "constant offset of 0.3" in diagnose(expected + 0.3, expected)
    assert "same across each gate" in diagnose(expected + np.array([[0.1], [0.2], [0.4]]), expected, "gate")
    assert diagnose(expected.T, expected) == "the transpose of the right answer"
    assert diagnose(np.zeros_like(expected), expected).startswith("all zeros")
    assert diagnose(expected + np.eye(3), expected) is None


def test_a_scalar_prints_without_an_index():
    with pytest.raises(ExerciseError, match=r"^E: the AUC is 0.4, expected 0.6.$"):
        check("E", 0.4, 0.6, what="the AUC")


def test_a_shape_mismatch_comes_with_the_hint():
    with pytest.raises(ExerciseError, match=r"^E: dgate has shape \(4, 5\), it should have \(4, 2\); "
                                            r"did you gather the visible columns\?"):
        check("E", np.zeros((4, 5)), np.zeros((4, 2)), what="dgate", hint="did you gather the visible columns?")


def test_a_library_block_given_a_column_of_the_wrong_shape_names_the_exercise():
    import minimoe as mm
    tower = mm.MLP(3, (2, 1), activate_last=False)
    tower.forward(np.ones((6, 3)))
    with pytest.raises(ExerciseError, match=r"^E: MLP.backward expects dout of shape \(6, 1\).*got \(6,\)\. "
                                            r"Keep the column two-dimensional"):
        attempt("E", lambda: tower.backward(np.ones(6)))


def test_blocks_are_checked_in_backward_order_and_the_first_wrong_one_is_named(capsys):
    library = {"towers.0.W": np.array([[1.0, 2.0]]), "gates.W": np.array([0.5, -1.0, 3.0]),
               "experts.W": np.array([2.0, 1.0]), "dX": np.array([[1.0, -2.0]])}
    blocks = [("towers", ["towers.0.W"]), ("gates", ["gates.W"]), ("experts", ["experts.W"]), ("dX", ["dX"])]
    assert check_blocks("E", dict(library), library, blocks)
    assert "every block is right" in capsys.readouterr().out
    yours = dict(library, **{"gates.W": 2 * library["gates.W"], "dX": library["dX"] + 1.0})
    with pytest.raises(ExerciseError, match=r"^E: wrong in gates, dX\. The first wrong block on the gradient's way "
                                            r"back is gates \(gates.W: a constant factor of 2") as raised:
        check_blocks("E", yours, library, blocks)
    assert "towers" in str(raised.value) and "WRONG" in str(raised.value)
    with pytest.raises(ExerciseError, match=r"no gradient for \['experts.W'\]"):
        check_blocks("E", {k: v for k, v in library.items() if k != "experts.W"}, library, blocks)
    assert check_blocks("E", NOT_DONE, library, blocks) is False
