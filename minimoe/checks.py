"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the argument, says what
was expected and shows what came. Nothing here broadcasts, clips or silently drops data.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

TASK_TYPES = ("binary", "regression")
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


def check_tasks(tasks, task_names=None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate task types and names; names default to ``task0``, ``task1``, ..."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a tuple such as ('binary', 'regression'), got {tasks!r}")
    if not tasks:
        raise ValueError("tasks must name at least one task, got an empty sequence")
    for index, task in enumerate(tasks):
        if task not in TASK_TYPES:
            raise ValueError(f"tasks[{index}] must be one of {TASK_TYPES}, got {task!r}")
    if task_names is None:
        task_names = tuple(f"task{k}" for k in range(len(tasks)))
    if isinstance(task_names, str) or not isinstance(task_names, Sequence):
        raise TypeError(f"task_names must be a tuple of strings, got {task_names!r}")
    if len(task_names) != len(tasks):
        raise ValueError(f"task_names must have one name per task ({len(tasks)}), got {len(task_names)}")
    if not all(isinstance(n, str) and n for n in task_names) or len(set(task_names)) != len(task_names):
        raise ValueError(f"task_names must be distinct non-empty strings, got {tuple(task_names)!r}")
    return tuple(tasks), tuple(task_names)


def _numeric_array(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating)
                                   or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def check_matrix(name: str, value, n_cols: int | None = None, dtype=None,
                 n_rows: int | None = None, cols_name: str = "columns") -> np.ndarray:
    """A finite 2-D real array, optionally with a given number of columns and rows.

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
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} must be finite, found {array[tuple(bad)]} at row {bad[0]}, column {bad[1]}")
    return array


def check_targets(name: str, value, tasks: Sequence[str], n_rows: int | None = None,
                  dtype=None) -> np.ndarray:
    """Targets (N, T): finite, one column per task, binary columns exactly 0 or 1."""
    targets = check_matrix(name, value, n_cols=len(tasks), dtype=dtype, n_rows=n_rows,
                           cols_name="columns (one per task)")
    for k, task in enumerate(tasks):
        if task == "binary":
            column = targets[:, k]
            bad = (column != 0) & (column != 1)
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"{name}[:, {k}] is a binary task, labels must be 0 or 1; "
                                 f"got {column[row]} at row {row}")
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
