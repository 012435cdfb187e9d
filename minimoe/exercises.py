"""Checks for the lessons' exercises: the learner writes a function, these say whether it is right,
and when it is not, where and how it is wrong.

An exercise cell in a lesson defines a stub that raises ``NotImplementedError``; the check cell after
it runs the learner's function through ``attempt`` and compares the result with the library's
answer (``check``), with central differences (``check_gradient``), or, for a backward pass made of
blocks, block by block (``check_blocks``):

    yours = attempt("Exercise 1.1", linear_backward, x, W, dy)      # NOT_DONE while the stub is empty
    check("Exercise 1.1", yours, expected, what="dx")               # prints; raises if wrong

While a stub is empty nothing fails: the check prints that the exercise is not done yet and the
lesson goes on with the library's version. A wrong answer stops the check cell with an
``ExerciseError`` whose message starts with the exercise's name and says what is wrong: which
entries, by how much, and a pattern when there is one (a constant factor of 2 or -1, an offset per
row, a transpose, all zeros). A lesson binds the library's version for the cells after a check
BEFORE the check can raise, so a wrong answer never breaks a later cell.
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
    """A learner's answer that does not match: the message says where, by how much, and how."""


def attempt(exercise: str, function: Callable, *args, goes_on_with: str = "the library's version", **kwargs):
    """``function(*args, **kwargs)``, or ``NOT_DONE`` when it raises NotImplementedError (an empty
    stub); ``goes_on_with`` says what the lesson uses meanwhile. A library block that refuses an
    upstream gradient of the wrong shape becomes an ``ExerciseError`` named after the exercise, with
    a hint; any other error is the learner's to see, so it propagates."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        print(f"{exercise}: {NOT_DONE_MESSAGE}. The lesson goes on with {goes_on_with}; "
              f"write the stub above and run this cell again to check yours.")
        return NOT_DONE
    except ValueError as error:
        if ".backward expects" not in str(error):
            raise
        hint = ""
        if str(error).rstrip().endswith(",)"):                # a 1-D array where a column was expected
            hint = " Keep the column two-dimensional: dS[:, k:k + 1] is (N, 1), dS[:, k] is (N,)."
        raise ExerciseError(f"{exercise}: {error}.{hint}") from None


def is_done(result) -> bool:
    """False for ``NOT_DONE`` (also inside a tuple of results), True otherwise."""
    if isinstance(result, tuple):
        return all(is_done(part) for part in result)
    return result is not NOT_DONE


# -- what a wrong answer looks like ----------------------------------------------------------

_NAMED_FACTORS = {2.0: "2 (a term counted twice?)", 0.5: "1/2 (a factor of 2 missing?)",
                  -1.0: "-1 (a sign flipped)", -2.0: "-2", -0.5: "-1/2"}


def _factor_name(factor: float) -> str | None:
    """Words for a constant factor: the named ones, or sqrt((n-1)/n) and sqrt(n/(n-1)) (a
    population against a sample variance); None for any other number."""
    for value, name in _NAMED_FACTORS.items():
        if np.isclose(factor, value, rtol=1e-6):
            return name
    square = factor * factor
    if 0 < square < 1 and np.isclose(n := 1 / (1 - square), round(n), rtol=1e-6) and round(n) >= 2:
        return f"sqrt((n-1)/n) with n = {round(n)} (ddof: a sample where a population variance belongs?)"
    if square > 1 and np.isclose(n := square / (square - 1), round(n), rtol=1e-6) and round(n) >= 2:
        return f"sqrt(n/(n-1)) with n = {round(n)} (ddof: a population where a sample variance belongs?)"
    return None


def diagnose(yours: np.ndarray, expected: np.ndarray, first_axis: str = "row") -> str | None:
    """A pattern in a wrong answer, in words, or None: all zeros, a constant factor, a constant
    offset, an offset per entry of the first axis (``first_axis`` names it: a row, a gate), or a
    transpose. Both arrays of the same shape, finite."""
    yours, expected = np.asarray(yours, np.float64), np.asarray(expected, np.float64)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    close = lambda a, b: np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale)   # noqa: E731
    if not np.any(yours) and np.any(expected):
        return "all zeros: the term is never added (or added into a copy that is thrown away)"
    nonzero = np.abs(expected) > 1e-9 * scale
    if nonzero.any():
        ratios = yours[nonzero] / expected[nonzero]
        # Any two numbers have a ratio: a factor says something for several entries, or when it is a named one.
        name = _factor_name(float(ratios[0])) or (f"{ratios[0]:.6g}" if nonzero.sum() > 1 else None)
        if name and close(yours, ratios[0] * expected):
            return f"a constant factor of {name} times the right answer"
    offset = yours - expected
    if offset.size > 1 and close(offset, offset.flat[0]):
        return f"a constant offset of {offset.flat[0]:.6g} on every entry"
    if offset.ndim >= 2 and offset.shape[0] > 1:
        per_first = offset.reshape(len(offset), -1)
        if close(per_first, per_first[:, :1]) and not close(per_first[:, 0], per_first[0, 0]):
            return f"an offset that is the same across each {first_axis} but differs between {first_axis}s"
    if yours.ndim == 2 and yours.shape[0] == yours.shape[1] and close(yours.T, expected):
        return "the transpose of the right answer"
    return None


def _where(index) -> str:
    return f" at {tuple(int(i) for i in index)}" if len(index) else ""


def _describe_mismatch(exercise: str, what: str, yours: np.ndarray, expected: np.ndarray, wrong: np.ndarray,
                       first_axis: str = "row") -> str:
    not_numbers = ~np.isfinite(yours)
    if not_numbers.any():                         # NaN or inf first: they are the news
        first = tuple(int(i) for i in np.argwhere(not_numbers)[0])
        return (f"{exercise}: {what} holds {int(not_numbers.sum())} non-finite entries of {yours.size} "
                f"(the first{_where(first)}: {yours[first]}, expected {expected[first]:.6g}); look for a "
                f"log or exp of a large number, or a division by 0.")
    pattern = diagnose(yours, expected, first_axis)
    pattern = f" It looks like {pattern}." if pattern else ""
    if yours.ndim == 0:
        return f"{exercise}: {what} is {float(yours):.6g}, expected {float(expected):.6g}.{pattern}"
    gap = np.abs(yours - expected)
    worst = np.unravel_index(int(np.argmax(np.where(wrong, gap, -1.0))), yours.shape)
    examples = "; ".join(f"{_where(index).strip()}: yours {yours[tuple(index)]:.6g}, "
                         f"expected {expected[tuple(index)]:.6g}" for index in np.argwhere(wrong)[:3])
    return (f"{exercise}: {what} is wrong at {int(wrong.sum())} of {wrong.size} entries.{pattern} The worst is"
            f"{_where(worst)}, off by {gap[worst]:.3g} (yours {yours[worst]:.6g}, expected {expected[worst]:.6g}). "
            f"First wrong entries: {examples}.")


def _as_array(exercise: str, what: str, yours, shape: tuple, hint: str | None) -> np.ndarray:
    """The learner's answer as a float64 array of ``shape``, or an ExerciseError saying what came."""
    array = np.asarray(yours)
    if array.shape != tuple(shape):
        raise ExerciseError(f"{exercise}: {what} has shape {array.shape}, it should have {tuple(shape)}"
                            + (f"; {hint}" if hint else ""))
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ExerciseError(f"{exercise}: {what} should hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def check(exercise: str, yours, expected, what: str = "the result", rtol: float = 1e-7,
          atol: float = 1e-10, hint: str | None = None, first_axis: str = "row") -> bool:
    """Compare the learner's array with the expected one. Prints the outcome and returns True when
    they match; returns False (after saying so) for ``NOT_DONE``; raises ``ExerciseError`` naming
    the wrong entries, and a pattern in them, otherwise. ``hint`` is added to a shape mismatch."""
    if yours is NOT_DONE:
        print(f"{exercise}: {what}: {NOT_DONE_MESSAGE}.")
        return False
    expected = np.asarray(expected, dtype=np.float64)
    yours_array = _as_array(exercise, what, yours, expected.shape, hint)
    wrong = ~np.isclose(yours_array, expected, rtol=rtol, atol=atol) | ~np.isfinite(yours_array)
    if wrong.any():
        raise ExerciseError(_describe_mismatch(exercise, what, yours_array, expected, wrong, first_axis))
    gap = float(np.abs(yours_array - expected).max()) if expected.size else 0.0
    print(f"{exercise}: {what} correct (largest difference {gap:.1e}).")
    return True


def check_gradient(exercise: str, yours, f: Callable[[], np.ndarray], x: np.ndarray, dout=None,
                   what: str = "the gradient", threshold: float = THRESHOLD_BLOCK, hint: str | None = None) -> bool:
    """Compare the learner's gradient of sum(f() * dout) with respect to ``x`` with central
    differences (``numerical_gradient``; ``f`` reads ``x``, which is nudged in place and restored).
    Prints the relative error and returns True below ``threshold``; False for ``NOT_DONE``; raises
    ``ExerciseError`` with the entries that disagree, and a pattern in them, otherwise."""
    if yours is NOT_DONE:
        print(f"{exercise}: {what}: {NOT_DONE_MESSAGE}.")
        return False
    yours_array = _as_array(exercise, what, yours, np.shape(x), hint)
    numeric = numerical_gradient(f, x, np.ones(()) if dout is None else dout)
    error = _error(yours_array, numeric)
    if not error < threshold:
        raise ExerciseError(_gradient_mismatch(exercise, what, yours_array, numeric, error, threshold))
    print(f"{exercise}: {what} matches central differences (relative error {error:.1e}, limit {threshold:.0e}).")
    return True


def _error(yours: np.ndarray, reference: np.ndarray) -> float:
    return relative_error(yours, reference) if np.isfinite(yours).all() else float("inf")


def _gradient_mismatch(exercise: str, what: str, yours: np.ndarray, numeric: np.ndarray, error: float,
                       threshold: float) -> str:
    finite = np.isfinite(yours)
    scale = max(1e-8, np.abs(np.where(finite, yours, 0.0)).max(initial=0.0) + np.abs(numeric).max(initial=0.0))
    wrong = (np.abs(yours - numeric) > threshold * scale) | ~finite
    detail = _describe_mismatch(exercise, what, yours, numeric, wrong)
    return f"{detail} (Relative error {error:.2e} against central differences, limit {threshold:.0e}.)"


# -- a backward pass made of blocks ------------------------------------------------------------

def numerical_gradients(f: Callable[[], np.ndarray], arrays: dict[str, np.ndarray], dout) -> dict[str, np.ndarray]:
    """{name: d sum(f() * dout) / d arrays[name]} by central differences, for every array."""
    return {name: numerical_gradient(f, array, dout) for name, array in arrays.items()}


def check_blocks(exercise: str, yours, library: dict[str, np.ndarray], blocks: list[tuple[str, list[str]]],
                 numeric: dict[str, np.ndarray] | None = None, threshold: float = 1e-6,
                 hints: dict[str, str] | None = None) -> bool:
    """A composite backward pass checked block by block, in the order the gradient flows (towers,
    then gates, experts, levels, and the input gradient last).

    ``yours`` and ``library``: {array name: gradient}, the learner's (or ``NOT_DONE``) and the
    library's; ``numeric``: the same from central differences, if computed; ``blocks``: (block
    label, the names of its arrays), in backward order. Shapes are checked first (``hints`` may add
    a word per array). Prints one line per block, against the library and against central
    differences, and returns True when every block is right. Otherwise raises ``ExerciseError``
    that names the wrong blocks, the first one first: the gradient flows from it into the blocks
    after it, so they may be wrong only because of it.
    """
    if yours is NOT_DONE:
        print(f"{exercise}: {NOT_DONE_MESSAGE}.")
        return False
    if not isinstance(yours, dict):
        raise ExerciseError(f"{exercise}: expected a dict of gradients by name, got {type(yours).__name__}")
    missing = [name for _, names in blocks for name in names if name not in yours]
    if missing:
        raise ExerciseError(f"{exercise}: your result has no gradient for {missing[:5]}"
                            + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    hints = hints or {}
    arrays = {name: _as_array(exercise, name, yours[name], np.shape(library[name]), hints.get(name))
              for _, names in blocks for name in names}
    lines, wrong_blocks = [], []
    for label, names in blocks:
        against_library = max(_error(arrays[name], library[name]) for name in names)
        against_numeric = max(_error(arrays[name], numeric[name]) for name in names) if numeric else None
        ok = against_library < threshold and (against_numeric is None or against_numeric < threshold)
        pattern = None
        if not ok:
            worst = max(names, key=lambda name: _error(arrays[name], library[name]))
            if np.isfinite(arrays[worst]).all():
                pattern = diagnose(arrays[worst], np.asarray(library[worst], np.float64))
            wrong_blocks.append((label, worst, pattern))
        verdict = lambda error: "-" if error is None else f"{'ok ' if error < threshold else 'WRONG'} {error:.1e}"  # noqa: E731
        lines.append(f"  {label:<28} {verdict(against_library):>14} {verdict(against_numeric):>14}"
                     + (f"   {pattern}" if pattern else ""))
    table = f"  {'block':<28} {'vs library':>14} {'vs numbers':>14}\n" + "\n".join(lines)
    if not wrong_blocks:
        print(f"{exercise}: every block is right (relative errors below {threshold:.0e}).\n{table}")
        return True
    first, worst, pattern = wrong_blocks[0]
    others = [label for label, _, _ in wrong_blocks[1:]]
    raise ExerciseError(
        f"{exercise}: wrong in {', '.join(label for label, _, _ in wrong_blocks)}. The first wrong block on the "
        f"gradient's way back is {first} ({worst}" + (f": {pattern}" if pattern else "") + ")"
        + (f"; fix it first: {', '.join(others)} come(s) after it on that way and may be wrong only because "
           f"of it." if others else ".")
        + f"\n{table}")
