"""Training speed of two revisions of minimoe, timed in alternating rounds on the same machine.

    python benchmarks/compare_revisions.py BEFORE [AFTER]     # AFTER defaults to the work tree
    python benchmarks/compare_revisions.py 0ee224e --rounds 7

Each revision is exported with ``git archive`` into a temporary folder. Every round starts one fresh
process per revision (in alternating order) that imports that revision's ``minimoe`` and trains each
workload for 4 epochs, keeping the fastest epoch after the first (a warm-up). Alternating rounds
spread a machine's drift (another process, a warm CPU) over both revisions alike. Prints the median
seconds per epoch and the ratio AFTER / BEFORE with the range over rounds.

Workloads: the MMoE of ``train_speed.py`` (D=100, E=8 experts of 64, towers 16, batch 512, 50,000
rows) in float32 and float64, and lesson sizes (D=20, 4 experts of 16, batch 128, 10,000 rows) for
MMoE and a 2-level PLE with hidden-layer gates, and an ESMM with an embedding input layer on a
20,000-impression funnel (batch 256), where per-array overheads weigh most.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = r"""
import json, sys, time
import numpy as np
import minimoe as mm

def epoch_seconds(make, n, d, batch, dtype, funnel=False):
    if funnel:
        X, Y = mm.data.make_funnel(n, seed=0)
        Y = mm.data.esmm_labels(Y)
    else:
        X, Y = mm.data.make_synthetic(n, d, correlation=0.5, seed=0, dtype=dtype)
    model = make(d, dtype)
    optimizer = mm.Adam(lr=1e-3)
    history = mm.fit(model, X, Y, epochs=4, batch_size=batch, optimizer=optimizer, progress=False)
    return min(history.epoch_seconds[1:])          # the first epoch warms up; the fastest of the rest

paper = lambda d, dtype: mm.MMoE(d, 8, (64,), (16,), seed=0, dtype=dtype)
small_mmoe = lambda d, dtype: mm.MMoE(d, 4, (16,), (8,), seed=0, dtype=dtype)
small_ple = lambda d, dtype: mm.PLE(d, 2, 2, 1, (16,), (8,), gate_units=(8,), seed=0, dtype=dtype)
small_esmm = lambda d, dtype: mm.ESMM(None, bottom_units=(32,), tower_units=(16,), seed=0, dtype=dtype,
                                      inputs=mm.FeatureInput([200, 30, 8], n_numeric=6, embedding_dims=8, seed=0))
print(json.dumps({
    "MMoE D=100 E=8x64 float32": epoch_seconds(paper, 50_000, 100, 512, np.float32),
    "MMoE D=100 E=8x64 float64": epoch_seconds(paper, 50_000, 100, 512, np.float64),
    "MMoE lesson size float64": epoch_seconds(small_mmoe, 10_000, 20, 128, np.float64),
    "PLE 2 levels lesson size float64": epoch_seconds(small_ple, 10_000, 20, 128, np.float64),
    "ESMM with embeddings lesson size float64": epoch_seconds(small_esmm, 20_000, None, 256, np.float64, funnel=True),
}))
"""


def export(revision: str, folder: Path) -> Path:
    """The revision's files in ``folder`` (the work tree itself for ``revision == "work"``)."""
    if revision == "work":
        return ROOT
    archive = folder / f"{revision}.tar"
    with archive.open("wb") as stream:
        subprocess.run(["git", "-C", str(ROOT), "archive", revision], stdout=stream, check=True)
    target = folder / revision
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def time_once(source: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", WORKLOAD], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"})
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="a git revision (commit, tag, branch)")
    parser.add_argument("after", nargs="?", default="work", help="a git revision, or 'work' for the work tree")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sources = {name: export(name, Path(folder)) for name in (args.before, args.after)}
        times = {name: [] for name in sources}
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(sources)[::-1]
            for name in order:
                times[name].append(time_once(sources[name]))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    workloads = list(times[args.before][0])
    width = max(len(w) for w in workloads)
    print(f"{'workload':<{width}}  {args.before + ' s':>12}  {args.after + ' s':>12}  {'after/before':>12}  range")
    for workload in workloads:
        before = [run[workload] for run in times[args.before]]
        after = [run[workload] for run in times[args.after]]
        ratios = [a / b for a, b in zip(after, before)]
        print(f"{workload:<{width}}  {statistics.median(before):12.3f}  {statistics.median(after):12.3f}  "
              f"{statistics.median(ratios):12.3f}  {min(ratios):.3f}-{max(ratios):.3f}")


if __name__ == "__main__":
    main()
