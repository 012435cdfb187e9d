"""minimoe's ESMM against DeepCTR-Torch's, on the funnel of speed_table.py: a train epoch over 200,000
impressions in batches of 1,024 and a prediction of 50,000, as interleaved rounds in one process.

    pip install deepctr-torch          # 0.3.0; it brings scikit-learn
    python benchmarks/peer_esmm.py --rounds 5 [--threads 1]

Both are the paper's ESMM: embeddings of 8 for the three id columns (2,000, 30 and 8 ids) next to
the 6 numeric features, read by two towers of 16 units that end in a logit each (DeepCTR-Torch's
last layer has no bias), trained with Adam at lr 1e-3 on the click and click-and-conversion
labels. DeepCTR-Torch trains through its own ``fit`` (its shuffled DataLoader, no regularisation,
verbose=0) and predicts through its ``predict`` in batches of 8,192 rows, the size minimoe's
``predict`` uses; it runs in float32, minimoe in float64 and float32. Its model alone is timed too:
"train epoch, model" steps the same model and optimizer over batches sliced from one prebuilt input
tensor (forward, the two tasks' summed log losses, backward, Adam), "predict, model" runs its
forward once on all test rows in evaluation mode without autograd; minimoe has no separate data
pipeline, so its two columns repeat its ``fit`` and ``predict``. A train epoch is timed once per
round; a predict runs back to back for 0.25 s and counts its mean per call. The table gives the
median over rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: theirs)")
    return parser.parse_args()


ARGS = parse_arguments() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)          # before NumPy loads

import numpy as np  # noqa: E402
from speed_table import FUNNEL_CARDINALITIES, minimoe_operations, seconds, workloads  # noqa: E402

BATCH, PREDICT_ROWS_PER_CALL, EMBEDDING_DIM, TOWER = 1_024, 8_192, 8, 16


def deepctr_operations(X, Y, X_test):
    """{operation: a function that runs it once} for DeepCTR-Torch's ESMM on the same data."""
    import torch
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import ESMM

    def as_columns(batch) -> dict:
        columns = {f"id{i}": batch.categorical[:, i] for i in range(batch.categorical.shape[1])}
        columns.update({f"number{j}": batch.numeric[:, j].astype(np.float32) for j in range(batch.numeric.shape[1])})
        return columns

    features = ([SparseFeat(f"id{i}", cardinality, embedding_dim=EMBEDDING_DIM)
                 for i, cardinality in enumerate(FUNNEL_CARDINALITIES)]
                + [DenseFeat(f"number{j}", 1) for j in range(X.numeric.shape[1])])
    model = ESMM(features, tower_dnn_hidden_units=(TOWER,), l2_reg_linear=0, l2_reg_embedding=0, l2_reg_dnn=0,
                 task_types=("binary", "binary"), task_names=("ctr", "ctcvr"))
    model.compile("adam", loss=["binary_crossentropy", "binary_crossentropy"])
    train, test, labels = as_columns(X), as_columns(X_test), Y.astype(np.float32)

    def train_epoch():
        with contextlib.redirect_stdout(io.StringIO()):    # its fit prints the device and the sizes
            model.fit(train, labels, batch_size=BATCH, epochs=1, verbose=0)

    # The model alone: the (N, columns) float tensor its fit and predict build, in its column order.
    def as_tensor(columns: dict):
        return torch.from_numpy(np.column_stack([columns[name] for name in model.feature_index]).astype(np.float32))

    train_tensor, test_tensor, label_tensor = as_tensor(train), as_tensor(test), torch.from_numpy(labels)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(labels)))

    def train_epoch_model():
        model.train()
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            probabilities, y = model(train_tensor[rows]), label_tensor[rows]
            loss = sum(model.loss_func[k](probabilities[:, k], y[:, k], reduction="sum") for k in range(2))
            model.optim.zero_grad()
            loss.backward()
            model.optim.step()

    def predict_model():
        model.eval()
        with torch.no_grad():
            return model(test_tensor).numpy()

    return {"train epoch": train_epoch, "train epoch, model": train_epoch_model,
            "predict": lambda: model.predict(test, batch_size=PREDICT_ROWS_PER_CALL), "predict, model": predict_model}


def main() -> None:
    args = ARGS
    try:
        import deepctr_torch
        import torch
    except ImportError:
        raise SystemExit("this comparison needs DeepCTR-Torch: pip install deepctr-torch") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    _, build, X, Y, X_test, Y_test, batch = next(w for w in workloads() if w[0] == "ESMM funnel")
    implementations = {"minimoe float64": minimoe_operations(build, np.float64, X, Y, X_test, Y_test, batch),
                       "minimoe float32": minimoe_operations(build, np.float32, X, Y, X_test, Y_test, batch),
                       "DeepCTR-Torch float32": deepctr_operations(X, Y, X_test)}
    for implementation in ("minimoe float64", "minimoe float32"):    # no data pipeline of its own to leave out
        functions = implementations[implementation]
        functions["train epoch, model"], functions["predict, model"] = functions["train epoch"], functions["predict"]
    operations = ("train epoch", "train epoch, model", "predict", "predict, model")
    for functions in implementations.values():
        for operation in operations:
            functions[operation]()                                           # warm-up
    timings = {}
    for round_ in range(args.rounds):
        for implementation, functions in implementations.items():
            for operation in operations:
                timings.setdefault((implementation, operation), []).append(seconds(functions[operation]))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"numpy {np.__version__}, torch {torch.__version__}, deepctr-torch {deepctr_torch.__version__}; "
          f"{os.cpu_count()} cores; threads: {args.threads or 'default'}; median of {args.rounds} rounds\n")
    print(f"{'operation':<20}" + "".join(f"{implementation:>24}" for implementation in implementations)
          + "    minimoe / DeepCTR-Torch (float64, float32)")
    for operation in operations:
        medians = {implementation: statistics.median(timings[(implementation, operation)])
                   for implementation in implementations}
        peer = medians["DeepCTR-Torch float32"]
        print(f"{operation:<20}" + "".join(f"{value:>22.4f} s" for value in medians.values())
              + f"    {medians['minimoe float64'] / peer:.2f}, {medians['minimoe float32'] / peer:.2f}")


if __name__ == "__main__":
    main()
