"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the argument, says what
was expected and shows what came. Nothing here broadcasts, clips or silently drops data.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

DTYPES = (np.float32, np.float64)


def make_rng(seed, name: str = "seed") -> np.random.Generator:
    """A Generator from an int seed or an existing Generator (shared, not copied)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int or a numpy Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def check_correlation(name: str, value) -> float:
    """A task correlation: a real number in [-1, 1]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [-1, 1], got {value!r}")
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [-1, 1], got {value}")
    return float(value)


def check_number(name: str, value, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value}")
    return value


def check_dtype(dtype) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if resolved not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def check_positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_units(name: str, units, allow_empty: bool = False) -> tuple[int, ...]:
    """A tuple of layer widths, e.g. ``(64, 32)``."""
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence):
        raise TypeError(f"{name} must be a tuple of positive ints, got {units!r}")
    if not units and not allow_empty:
        raise ValueError(f"{name} must hold at least one layer width, got an empty {type(units).__name__}")
    return tuple(check_positive_int(f"{name}[{i}]", u) for i, u in enumerate(units))


def _numeric_array(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating)
                                   or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def check_matrix(name: str, value, n_cols: int | None = None, dtype=None,
                 n_rows: int | None = None, cols_name: str = "columns", allow_nan: bool = False) -> np.ndarray:
    """A finite 2-D real array, optionally with a given number of columns and rows (with
    ``allow_nan``, NaN entries are allowed; infinities never are).

    Returns an array of ``dtype`` (no copy when it already is one); never the caller's array
    modified.
    """
    array = _numeric_array(name, value)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, {cols_name}), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row, got shape {array.shape}")
    if n_cols is not None and array.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} {cols_name}, got {array.shape[1]} (shape {array.shape})")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} rows to match the inputs, got {array.shape[0]}")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite{' (NaN marks a missing label)' if allow_nan else ''}, "
                         f"found {array[tuple(where)]} at row {where[0]}, column {where[1]}")
    return array


def check_targets(name: str, value, tasks, n_rows: int | None = None, dtype=None,
                  allow_missing: bool = True, allow_empty_task: bool = False) -> np.ndarray:
    """Targets (N, T), one column per task (``tasks``: ``Task`` objects), each observed label valid
    for its task (binary: 0 or 1). NaN is a missing label when ``allow_missing``, an error
    otherwise. A task column with no label at all is an error unless ``allow_empty_task`` (a
    minibatch may hold none; a data set may not). Boolean labels are read as 0/1 when every task
    is binary."""
    if np.asarray(value).dtype == bool:
        regression = [task.name for task in tasks if task.kind != "binary"]
        if regression:
            raise TypeError(f"{name} holds booleans, which only binary tasks can take; tasks {regression} are not "
                            f"binary: pass numbers")
        value = np.asarray(value, dtype=np.float64 if dtype is None else dtype)
    targets = check_matrix(name, value, n_cols=len(tasks), dtype=dtype, n_rows=n_rows,
                           cols_name="columns (one per task)", allow_nan=True)
    missing = np.isnan(targets)
    if missing.any():
        k = int(np.argmax(missing.any(axis=0)))
        if not allow_missing:
            row = int(np.argmax(missing[:, k]))
            raise ValueError(f"{name}[:, {k}] (task {tasks[k].name!r}) has a missing label (NaN) at row {row}, "
                             f"and missing labels were not allowed here (allow_missing=False)")
        if not allow_empty_task and missing.all(axis=0).any():
            k = int(np.argmax(missing.all(axis=0)))
            raise ValueError(f"{name}[:, {k}] (task {tasks[k].name!r}) has no label at all (every entry is NaN)")
    for k, task in enumerate(tasks):
        task.check_labels(f"{name}[:, {k}]", targets[:, k])
    return targets


def check_weights(weights, n_tasks: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_tasks)
    array = np.asarray(weights, dtype=float)
    if array.shape != (n_tasks,):
        raise ValueError(f"weights must have one entry per task, shape ({n_tasks},), got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"weights must be finite and >= 0, got {array.tolist()}")
    return array
