"""Would predicting the batches on two threads close the gap to PyTorch? The experiment behind the
paragraph on it in docs/speed.md.

    pip install threadpoolctl          # limits OpenBLAS to one thread per batch in the threaded runs
    python benchmarks/threaded_predict.py --rounds 11

For each workload of speed_table.py (float32), it times three predictions of the test rows:

    serial     ``model.predict``, the batches one after another, OpenBLAS with its default threads
    threaded   the rows cut in two halves, ``model.predict`` of the first and, on a second thread,
               ``predict`` of the second by a copy of the model (a module keeps its last forward's
               caches, so two threads cannot share one), OpenBLAS limited to one thread so that the
               two do not fight over the cores; each half checked and batched as ``predict`` does
    PyTorch    the bridge's ``predict`` on ``to_torch`` of the same model

each the best of 8 calls, as the median over interleaved rounds, and prints the ratios to PyTorch.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from speed_table import workloads


def best_seconds(function, calls: int = 8) -> float:
    """The fastest of ``calls`` calls: on a shared machine the minimum is the least noisy summary."""
    best = np.inf
    for _ in range(calls):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def threaded_predict(model, replica, X, pool, blas):
    """``model.predict(X)`` with the rows split over two threads: the model predicts the first half
    and the replica (a copy with the same weights) the second."""
    half = len(X) // 2
    with blas.limit(limits=1, user_api="blas"):
        second = pool.submit(replica.predict, X[half:])
        first = model.predict(X[:half])
        return np.concatenate([first, second.result()])


def time_workload(build, X_test, rounds: int, pool, blas) -> dict[str, float]:
    """{variant: milliseconds} of the three predictions on one workload."""
    from minimoe.torch import to_torch, torch_inputs

    model = build(np.float32)
    replica = copy.deepcopy(model)
    module = to_torch(model)
    test_inputs = torch_inputs(X_test, module)
    np.testing.assert_allclose(threaded_predict(model, replica, X_test, pool, blas), model.predict(X_test),
                               rtol=1e-5, atol=1e-7)
    variants = {"serial": lambda: model.predict(X_test),
                "threaded": lambda: threaded_predict(model, replica, X_test, pool, blas),
                "PyTorch": lambda: module.predict(test_inputs)}
    timings = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant, function in variants.items():
            timings[variant].append(best_seconds(function))
    return {variant: 1e3 * statistics.median(values) for variant, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    rounds = parser.parse_args().rounds
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise SystemExit("this experiment needs threadpoolctl: pip install threadpoolctl") from None
    blas, pool = ThreadpoolController(), ThreadPoolExecutor(max_workers=1)
    print(f"float32; best of 8 calls, median of {rounds} interleaved rounds; milliseconds\n")
    print(f"{'workload':<14}{'serial':>9}{'threaded':>10}{'PyTorch':>9}{'serial/PT':>11}{'threaded/PT':>13}")
    for name, build, _, _, X_test, _, _ in workloads():
        ms = time_workload(build, X_test, rounds, pool, blas)
        print(f"{name:<14}{ms['serial']:>9.2f}{ms['threaded']:>10.2f}{ms['PyTorch']:>9.2f}"
              f"{ms['serial'] / ms['PyTorch']:>11.2f}{ms['threaded'] / ms['PyTorch']:>13.2f}", flush=True)

if __name__ == "__main__":
    main()
