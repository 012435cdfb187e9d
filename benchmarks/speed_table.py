"""Training, prediction and evaluation speed of minimoe, in float32 and float64, against a plain
PyTorch eager model of the same structure when torch is installed.

    python benchmarks/speed_table.py              # 5 interleaved rounds
    python benchmarks/speed_table.py --rounds 9 --threads 1

Workloads (the data is random, of the real shapes; timings do not depend on the values):

    Census MMoE   32 categorical columns of the Census-Income cardinalities (embeddings of up to 8)
                  and 7 numeric ones; MMoE, 8 experts of 16 units, towers of 16, T = 2; a train
                  epoch over 60,000 rows in batches of 512, predict and evaluate on 20,000 rows
    Census PLE    the same input; PLE, 2 levels of 4 shared and 2 per task experts of 16 units
    ESMM funnel   a funnel with a 2,000-id embedding (ids 2,000, 30 and 8, 6 numeric features), the
                  paper's ESMM (only the embeddings shared), towers of 16; a train epoch over 200,000
                  impressions in batches of 1,024, predict (pCTR, pCTCVR) and pCVR on 50,000

Every measurement (workload x dtype x implementation x operation) is repeated in ``--rounds``
interleaved rounds in this one process, so a machine's drift touches all alike; in a round, an
operation shorter than 0.25 s runs back to back until 0.25 s have passed and counts its mean per
call. The table gives the median seconds and the ratio to minimoe float64; a last table gives minimoe
float32 over PyTorch float32 per round (the two timed in the same round), as the median and the range
over rounds, since one machine's noise moves a single ratio by 15% or more. The PyTorch models come
from ``minimoe.torch.to_torch`` (the same layers and initial weights) and train with torch.optim.Adam.
Threads: BLAS and torch use ``--threads`` (default: whatever the libraries choose, 2 here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

CENSUS_CARDINALITIES = (11, 54, 49, 19, 5, 26, 17, 7, 12, 4, 5, 8, 10, 8, 8, 52, 36, 10, 11, 10, 11, 5, 5, 7,
                        44, 44, 44, 7, 5, 5, 5, 4)
CENSUS_NUMERIC = 7
FUNNEL_CARDINALITIES = (2_000, 30, 8)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: theirs)")
    parser.add_argument("--no-torch", action="store_true", help="time minimoe alone")
    return parser.parse_args()


ARGS = parse_arguments() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)          # before NumPy loads

import numpy as np  # noqa: E402

import minimoe as mm  # noqa: E402


def census_batch(rows: int, seed: int) -> mm.FeatureBatch:
    rng = np.random.default_rng(seed)
    return mm.FeatureBatch(rng.integers(0, CENSUS_CARDINALITIES, size=(rows, len(CENSUS_CARDINALITIES))),
                           rng.standard_normal((rows, CENSUS_NUMERIC)))


def census_inputs(dtype) -> mm.FeatureInput:
    return mm.FeatureInput(list(CENSUS_CARDINALITIES), n_numeric=CENSUS_NUMERIC, embedding_dims=8, seed=0,
                           dtype=dtype)


def workloads():
    """(name, model builder(dtype), train X, train Y, test X, test Y, batch size, predictions)."""
    train, test = census_batch(60_000, 1), census_batch(20_000, 2)
    labels = lambda n, seed: (np.random.default_rng(seed).random((n, 2)) < 0.2).astype(float)   # noqa: E731
    yield ("Census MMoE",
           lambda dtype: mm.MMoE(None, 8, (16,), (16,), tasks=("binary", "binary"), inputs=census_inputs(dtype),
                                 seed=0, dtype=dtype),
           train, labels(60_000, 3), test, labels(20_000, 4), 512)
    yield ("Census PLE",
           lambda dtype: mm.PLE(None, 2, 4, 2, (16,), (16,), tasks=("binary", "binary"), inputs=census_inputs(dtype),
                                seed=0, dtype=dtype),
           train, labels(60_000, 3), test, labels(20_000, 4), 512)
    X, Y = mm.data.make_funnel(250_000, cardinalities=FUNNEL_CARDINALITIES, seed=0)
    Y = mm.data.esmm_labels(Y)
    yield ("ESMM funnel",
           lambda dtype: mm.ESMM(None, tower_units=(16,), seed=0, dtype=dtype,
                                 inputs=mm.FeatureInput(list(FUNNEL_CARDINALITIES), n_numeric=6, embedding_dims=8,
                                                        seed=0, dtype=dtype)),
           X[:200_000], Y[:200_000], X[200_000:], Y[200_000:], 1_024)


MIN_MEASURED_SECONDS = 0.25


def seconds(function) -> float:
    """Seconds per call of function, called back to back until MIN_MEASURED_SECONDS have passed: a
    predict of 10 ms is then an average over some 25 calls, not one call at the mercy of the
    machine's noise; a train epoch is timed once."""
    calls, started = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_MEASURED_SECONDS:
            return elapsed / calls


def minimoe_operations(build, dtype, X, Y, X_test, Y_test, batch):
    """{operation: a function that runs it once}, on one model (trained epoch after epoch)."""
    model, optimizer = build(dtype), mm.Adam(lr=1e-3)
    operations = {
        "train epoch": lambda: mm.fit(model, X, Y, epochs=1, batch_size=batch, optimizer=optimizer, progress=False),
        "predict": lambda: model.predict(X_test),
        "evaluate": lambda: mm.evaluate(model, X_test, Y_test),
    }
    if isinstance(model, mm.ESMM):
        operations["predict pCVR"] = lambda: model.predict_cvr(X_test)
    return operations


def torch_operations(build, dtype, X, Y, X_test, Y_test, batch):
    """The same operations on ``to_torch`` of the same model: Adam, the same batches, the same loss."""
    import torch

    from minimoe.torch import to_torch, torch_inputs
    model = build(dtype)
    module = to_torch(model)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    inputs, targets = torch_inputs(X, module), torch.from_numpy(np.asarray(Y, dtype=dtype))
    test_inputs = torch_inputs(X_test, module)
    order = np.random.default_rng(0).permutation(len(Y))

    def rows_of(data, rows):
        return tuple(part[rows] for part in data) if isinstance(data, tuple) else data[rows]

    def train_epoch():
        module.train()
        for start in range(0, len(order), batch):
            rows = torch.from_numpy(order[start:start + batch])
            optimizer.zero_grad()
            scores = module(rows_of(inputs, rows))
            y = targets[rows]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, y, reduction="none").mean(dim=0).sum()
            loss.backward()
            optimizer.step()

    def predict():
        return module.predict(test_inputs)                 # evaluation mode, no graph, as minimoe's predict

    def evaluate():
        scores = predict().numpy()
        return [mm.metrics.auc(Y_test[:, k], scores[:, k]) for k in range(scores.shape[1])]

    operations = {"train epoch": train_epoch, "predict": predict, "evaluate": evaluate}
    if isinstance(model, mm.ESMM):
        operations["predict pCVR"] = lambda: module.predict_cvr(test_inputs)
    return operations


def main() -> None:
    args = ARGS
    try:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        have_torch = not args.no_torch
        torch_version = torch.__version__
    except ImportError:
        have_torch, torch_version = False, "not installed"
    print(f"numpy {np.__version__}, torch {torch_version}; {os.cpu_count()} cores; threads: "
          f"{args.threads or 'default'}; median of {args.rounds} interleaved rounds", flush=True)
    implementations = [("minimoe", np.float64), ("minimoe", np.float32)]
    if have_torch:
        implementations.append(("PyTorch eager", np.float32))
    timings = {}                                        # (workload, implementation, dtype, operation) -> [s]
    prepared = []
    for name, build, X, Y, X_test, Y_test, batch in workloads():
        for implementation, dtype in implementations:
            make = minimoe_operations if implementation == "minimoe" else torch_operations
            for operation, function in make(build, dtype, X, Y, X_test, Y_test, batch).items():
                function()                                                   # warm-up
                prepared.append(((name, implementation, np.dtype(dtype).name, operation), function))
    for round_ in range(args.rounds):
        for key, function in prepared:
            timings.setdefault(key, []).append(seconds(function))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    columns = [f"{implementation} {np.dtype(dtype).name}" for implementation, dtype in implementations]
    print(f"\n{'workload':<14}{'operation':<14}" + "".join(f"{c:>24}" for c in columns))
    for name in dict.fromkeys(key[0] for key in timings):
        for operation in dict.fromkeys(key[3] for key in timings if key[0] == name):
            reference = statistics.median(timings[(name, "minimoe", "float64", operation)])
            cells = []
            for implementation, dtype in implementations:
                values = timings.get((name, implementation, np.dtype(dtype).name, operation))
                cells.append("-" if values is None else
                             f"{statistics.median(values):8.4f} s ({statistics.median(values) / reference:4.2f})")
            print(f"{name:<14}{operation:<14}" + "".join(f"{c:>24}" for c in cells))
    print("\nseconds, median over rounds; in brackets the ratio to minimoe float64")
    if have_torch:
        print_against_torch(timings)


def print_against_torch(timings: dict) -> None:
    """The ratios the speed targets are about: minimoe float32 over PyTorch eager float32, paired by
    round (both timed in the same round, so a slow spell of the machine touches both), as the median
    over rounds and, in brackets, the lowest and highest round."""
    print("\nminimoe float32 / PyTorch eager float32, per round: median (lowest to highest):\n")
    operations = list(dict.fromkeys(key[3] for key in timings))
    print(f"{'workload':<14}" + "".join(f"{operation:>22}" for operation in operations))
    for name in dict.fromkeys(key[0] for key in timings):
        cells = []
        for operation in operations:
            ours = timings.get((name, "minimoe", "float32", operation))
            theirs = timings.get((name, "PyTorch eager", "float32", operation))
            if ours is None or theirs is None:
                cells.append("-")
                continue
            ratios = [a / b for a, b in zip(ours, theirs)]
            cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f})")
        print(f"{name:<14}" + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
