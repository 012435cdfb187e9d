"""Epoch time of CGC and PLE against MMoE with the same total number of experts and units.

    python benchmarks/extraction_speed.py            # median of 7
    python benchmarks/extraction_speed.py --quick    # median of 3

Setting as train_speed.py: D=100, experts of (64,), towers (16,), T=2 regression tasks, N=50,000
rows, batch 512, Adam, one epoch, float32. CGC has 4 shared experts and 2 per task (8 in all) and
is compared with an 8-expert MMoE; a 2-level PLE of the same experts per level (16 in all) with a
16-expert MMoE. CGC and PLE hold each expert group in its own module (so that the shared experts'
parameters have names of their own); the groups that read the same stream run as one stack (one
matrix product per layer and direction), every gate mixes the full (G, N, E) weights with exact
zeros for the experts it cannot see, and PLE's second level reads 64-unit streams instead of x.
The bar: at most 1.3x the MMoE epoch, with one BLAS thread and with two (set
OPENBLAS_NUM_THREADS before running).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minimoe as mm

D, H, TOWER, N, BATCH = 100, 64, 16, 50_000, 512


def epoch_seconds(build, X, Y) -> float:
    model = build()
    started = time.perf_counter()
    mm.fit(model, X, Y, epochs=1, batch_size=BATCH, optimizer=mm.Adam(lr=1e-3), seed=0, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="median of 3 instead of 7")
    repeats = 3 if parser.parse_args().quick else 7
    X, Y = mm.data.make_synthetic(N, D, correlation=0.5, seed=0, dtype=np.float32)
    common = dict(expert_units=(H,), tower_units=(TOWER,), seed=0, dtype=np.float32)
    pairs = [("CGC 4 shared + 2 per task", lambda: mm.CGC(D, n_shared_experts=4, n_task_experts=2, **common),
              "MMoE 8 experts", lambda: mm.MMoE(D, n_experts=8, **common)),
             ("PLE 2 levels x (4 + 2 + 2)", lambda: mm.PLE(D, n_levels=2, n_shared_experts=4, n_task_experts=2,
                                                           **common),
              "MMoE 16 experts", lambda: mm.MMoE(D, n_experts=16, **common))]
    print(f"{os.cpu_count()} cores; numpy {np.__version__}; float32, D={D}, experts ({H},), towers ({TOWER},), T=2, "
          f"N={N}, batch {BATCH}; median of {repeats} epochs, the two models alternating\n")
    print(f"{'model':<28}{'seconds':>9}   {'against':<18}{'seconds':>9}{'ratio':>8}")
    for name, build, reference, build_reference in pairs:
        epoch_seconds(build, X, Y), epoch_seconds(build_reference, X, Y)           # warm-up
        ours, theirs = [], []
        for _ in range(repeats):                      # alternate, so that load on the machine hits both
            ours.append(epoch_seconds(build, X, Y))
            theirs.append(epoch_seconds(build_reference, X, Y))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{name:<28}{a:>9.3f}   {reference:<18}{b:>9.3f}{a / b:>8.2f}")


if __name__ == "__main__":
    main()
