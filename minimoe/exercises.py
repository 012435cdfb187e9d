"""Checks for the lessons' exercises: the learner writes a function, these say whether it is right.

An exercise cell in a lesson defines a stub that raises ``NotImplementedError``; the check cell after
it runs the learner's function through ``attempt`` and compares the result with ``check`` (against
the library's answer) and ``check_gradient`` (against central differences):

    yours = attempt("Exercise 1.1", linear_backward, x, W, dy)      # NOT_DONE while the stub is empty
    check("Exercise 1.1", yours, expected, what="dx")               # prints; raises if wrong

While a stub is empty nothing fails: the check prints that the exercise is not done yet and the
lesson goes on with the library's version. A wrong answer stops the lesson with an
``ExerciseError`` that says which entries are wrong and by how much.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .gradcheck import THRESHOLD_BLOCK, numerical_gradient, relative_error

NOT_DONE_MESSAGE = "not done yet"


class _NotDone:
    """The result of an exercise whose stub still raises NotImplementedError."""

    def __repr__(self) -> str:
        return "NOT_DONE"

    def __bool__(self) -> bool:
        return False


NOT_DONE = _NotDone()


class ExerciseError(AssertionError):
    """A learner's answer that does not match: the message says where and by how much."""


def attempt(exercise: str, function: Callable, *args, goes_on_with: str = "the library's version", **kwargs):
    """``function(*args, **kwargs)``, or ``NOT_DONE`` when it raises NotImplementedError (an empty
    stub); ``goes_on_with`` says what the lesson uses meanwhile. Any other error is the learner's to
    see, so it propagates."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        print(f"{exercise}: {NOT_DONE_MESSAGE}. The lesson goes on with {goes_on_with}; "
              f"write the stub above and run this cell again to check yours.")
        return NOT_DONE


def is_done(result) -> bool:
    """False for ``NOT_DONE`` (also inside a tuple of results), True otherwise."""
    if isinstance(result, tuple):
        return all(is_done(part) for part in result)
    return result is not NOT_DONE


def _describe_mismatch(exercise: str, what: str, yours: np.ndarray, expected: np.ndarray, wrong: np.ndarray) -> str:
    not_numbers = ~np.isfinite(yours)
    if not_numbers.any():                         # NaN or inf first: they are the news
        first = tuple(int(i) for i in np.argwhere(not_numbers)[0])
        return (f"{exercise}: {what} holds {int(not_numbers.sum())} non-finite entries of {yours.size} "
                f"(the first at {first}: {yours[first]}, expected {expected[first]:.6g}); look for a "
                f"log or exp of a large number, or a division by 0.")
    gap = np.abs(yours - expected)
    worst = np.unravel_index(int(np.argmax(np.where(wrong, gap, -1.0))), yours.shape)
    where = np.argwhere(wrong)[:3]
    examples = "; ".join(f"at {tuple(int(i) for i in index)}: yours {yours[tuple(index)]:.6g}, "
                         f"expected {expected[tuple(index)]:.6g}" for index in where)
    return (f"{exercise}: {what} is wrong at {int(wrong.sum())} of {wrong.size} entries. The worst is at "
            f"{tuple(int(i) for i in worst)}, off by {gap[worst]:.3g} (yours {yours[worst]:.6g}, expected "
            f"{expected[worst]:.6g}). First wrong entries: {examples}.")


def check(exercise: str, yours, expected, what: str = "the result", rtol: float = 1e-7,
          atol: float = 1e-10) -> bool:
    """Compare the learner's array with the expected one. Prints the outcome and returns True when
    they match; returns False (after saying so) for ``NOT_DONE``; raises ``ExerciseError`` naming
    the wrong entries otherwise."""
    if yours is NOT_DONE:
        print(f"{exercise}: {what}: {NOT_DONE_MESSAGE}.")
        return False
    expected = np.asarray(expected)
    yours_array = np.asarray(yours)
    if yours_array.shape != expected.shape:
        raise ExerciseError(f"{exercise}: {what} has shape {yours_array.shape}, it should have {expected.shape}")
    if not np.issubdtype(yours_array.dtype, np.number):
        raise ExerciseError(f"{exercise}: {what} should hold numbers, got dtype {yours_array.dtype}")
    yours_array = yours_array.astype(np.float64)
    expected = expected.astype(np.float64)
    wrong = ~np.isclose(yours_array, expected, rtol=rtol, atol=atol) | ~np.isfinite(yours_array)
    if wrong.any():
        raise ExerciseError(_describe_mismatch(exercise, what, yours_array, expected, wrong))
    gap = float(np.abs(yours_array - expected).max()) if expected.size else 0.0
    print(f"{exercise}: {what} correct (largest difference {gap:.1e}).")
    return True


def check_gradient(exercise: str, yours, f: Callable[[], np.ndarray], x: np.ndarray, dout=None,
                   what: str = "the gradient", threshold: float = THRESHOLD_BLOCK) -> bool:
    """Compare the learner's gradient of sum(f() * dout) with respect to ``x`` with central
    differences (``numerical_gradient``; ``f`` reads ``x``, which is nudged in place and restored).
    Prints the relative error and returns True below ``threshold``; False for ``NOT_DONE``; raises
    ``ExerciseError`` with the entries that disagree otherwise."""
    if yours is NOT_DONE:
        print(f"{exercise}: {what}: {NOT_DONE_MESSAGE}.")
        return False
    dout = np.ones(()) if dout is None else dout
    numeric = numerical_gradient(f, x, dout)
    yours_array = np.asarray(yours, dtype=np.float64)
    if yours_array.shape != numeric.shape:
        raise ExerciseError(f"{exercise}: {what} has shape {yours_array.shape}, it should have {numeric.shape}")
    finite = np.isfinite(yours_array)
    error = relative_error(yours_array, numeric) if finite.all() else float("inf")
    if not error < threshold:
        scale = max(1e-8, np.abs(np.where(finite, yours_array, 0.0)).max() + np.abs(numeric).max())
        wrong = (np.abs(yours_array - numeric) > threshold * scale) | ~finite
        raise ExerciseError(f"relative error {error:.2e} against central differences (limit {threshold:.0e}). "
                            + _describe_mismatch(exercise, what, yours_array, numeric, wrong))
    print(f"{exercise}: {what} matches central differences (relative error {error:.1e}, limit {threshold:.0e}).")
    return True
