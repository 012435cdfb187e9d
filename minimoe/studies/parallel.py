"""Running a study's independent runs in worker processes, with the same results as in one."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from ..checks import check_positive_int
from ..progress import ProgressBar

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_blas():
    """Worker processes inherit this environment: one BLAS thread each, so that ``jobs`` processes
    on ``jobs`` cores do not oversubscribe them (the small matrices here gain nothing from more)."""
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    os.environ.update({name: "1" for name in BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def map_runs(run_one: Callable, specs: list, settings, jobs: int | None = None, progress: bool = True,
             description: str = "runs") -> list:
    """[run_one(spec, settings) for spec in specs], in ``jobs`` processes (default: all cores), in the
    order of specs. A run must draw every random number from seeds of its own spec, so that the
    results do not depend on ``jobs``.

    Workers are started with ``spawn`` (fresh interpreters, one BLAS thread each), so a script that
    calls this with jobs > 1 must guard its entry point with ``if __name__ == "__main__":``, as any
    multiprocessing script must; Jupyter and the ``minimoe`` command need nothing.
    """
    jobs = check_positive_int("jobs", (os.cpu_count() or 1) if jobs is None else jobs)
    bar = ProgressBar(len(specs), description, enabled=progress)
    results = []
    try:
        if jobs == 1:
            for spec in specs:
                results.append(run_one(spec, settings))
                bar.update(1)
            return results
        with single_threaded_blas(), ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(run_one, specs, [settings] * len(specs)):
                results.append(result)
                bar.update(1)
        return results
    finally:
        bar.close()
