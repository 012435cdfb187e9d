"""Training speed of minimoe's MMoE, against PyTorch eager when torch is installed.

    python benchmarks/train_speed.py            # the issue's setting, float32 and float64
    python benchmarks/train_speed.py --quick    # fewer repeats

Setting: MMoE, D=100, E=8 experts of (64,), towers (16,), T=2 regression tasks, N=50,000 rows,
batch 512, Adam, one epoch. Prints, per dtype: the median epoch time of minimoe and of an
equivalent PyTorch eager model (same layers, same initial weights, same optimizer), their ratio,
and the achieved GFLOP/s of each as a fraction of a large matmul's throughput measured in the same
run. Then minimoe's epoch time for E = 2 .. 32 (float32), to see how it grows with E.

FLOPs of one training step count the matrix products a step needs: the forward pass, and in the
backward pass the weight gradients of every layer plus the input gradients of every layer but the
first (d loss / d X is not needed, and neither minimoe's fit nor the PyTorch model computes it);
2 FLOPs per multiply-add. Elementwise work is not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import minimoe as mm

D, E, H, TOWER, T, N, BATCH = 100, 8, 64, 16, 2, 50_000, 512


def step_flops(n_experts: int, rows: int) -> float:
    first_layers = D * n_experts * H + T * D * n_experts       # experts' and gates' layers on x
    later_layers = T * n_experts * H + T * (H * TOWER + TOWER)  # mixtures and towers
    multiply_adds = rows * (3 * (first_layers + later_layers) - first_layers)
    return 2 * multiply_adds


def matmul_peak(dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a size x size matmul: the machine's practical peak for this dtype."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    a @ a
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - started)
    return 2 * size ** 3 / min(times) / 1e9


def make_data(dtype):
    X, Y = mm.data.make_synthetic(N, D, correlation=0.5, seed=0, dtype=dtype)
    return X, Y


def minimoe_epoch(X, Y, n_experts: int, dtype, seed: int = 0):
    model = mm.MMoE(D, n_experts=n_experts, expert_units=(H,), tower_units=(TOWER,), seed=seed, dtype=dtype)
    history = mm.fit(model, X, Y, epochs=1, batch_size=BATCH, optimizer=mm.Adam(lr=1e-3), seed=seed,
                     progress=False)
    return history.epoch_seconds[0], model


def minimoe_epoch_seconds(X, Y, n_experts: int, dtype) -> float:
    return minimoe_epoch(X, Y, n_experts, dtype)[0]


def torch_model(reference, dtype):
    import torch
    from torch import nn

    class TorchMMoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.experts = nn.Linear(D, E * H)                 # all experts' first layer in one matmul
            self.gates = nn.ModuleList(nn.Linear(D, E) for _ in range(T))
            self.towers = nn.ModuleList(nn.Sequential(nn.Linear(H, TOWER), nn.ReLU(), nn.Linear(TOWER, 1))
                                        for _ in range(T))

        def forward(self, x):
            experts = torch.relu(self.experts(x)).view(-1, E, H)                        # (N, E, H)
            outputs = []
            for gate, tower in zip(self.gates, self.towers):
                weights = torch.softmax(gate(x), dim=1)                                 # (N, E)
                outputs.append(tower(torch.einsum("ne,neh->nh", weights, experts)))    # (N, 1)
            return torch.cat(outputs, dim=1)                                            # (N, T)

    model = TorchMMoE().to(dtype)
    p = reference.params
    with torch.no_grad():                                      # the same initial weights as minimoe's
        experts = "levels.0.experts.shared"
        model.experts.weight.copy_(torch.from_numpy(p[f"{experts}.W0"].transpose(0, 2, 1).reshape(E * H, D)))
        model.experts.bias.copy_(torch.from_numpy(p[f"{experts}.b0"].reshape(-1)))
        for k in range(T):
            model.gates[k].weight.copy_(torch.from_numpy(p[f"levels.0.gates.task{k}.W"].T.copy()))
            model.gates[k].bias.copy_(torch.from_numpy(p[f"levels.0.gates.task{k}.b"]))
            for layer in (0, 2):
                model.towers[k][layer].weight.copy_(torch.from_numpy(p[f"towers.{k}.layers.{layer}.W"].T.copy()))
                model.towers[k][layer].bias.copy_(torch.from_numpy(p[f"towers.{k}.layers.{layer}.b"]))
    return model


def torch_epoch(X, Y, reference, dtype, seed: int = 0) -> float:
    import torch
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    model = torch_model(reference, torch_dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_t, Y_t = torch.from_numpy(X), torch.from_numpy(Y)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(N))
    started = time.perf_counter()
    for start in range(0, N, BATCH):
        rows = order[start:start + BATCH]
        optimizer.zero_grad()
        scores = model(X_t[rows])
        loss = ((scores - Y_t[rows]) ** 2).mean(dim=0).sum()   # the same loss as MultiTaskLoss
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def median_time(repeats: int, fn, *args) -> float:
    """Median over ``repeats`` calls of fn(*args), which returns seconds, after one warm-up call."""
    fn(*args)                                                  # warm-up: allocations, BLAS start-up
    return statistics.median(fn(*args) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch = None
        torch_version = "not installed"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; torch {torch_version}")
    print(f"MMoE D={D}, E={E}, experts ({H},), towers ({TOWER},), T={T}, N={N}, batch {BATCH}, Adam, one epoch; "
          f"median of {repeats}\n")
    header = (f"{'dtype':<8}{'matmul GFLOP/s':>15}{'minimoe s':>11}{'GFLOP/s':>9}{'% peak':>8}"
              f"{'torch s':>9}{'GFLOP/s':>9}{'% peak':>8}{'minimoe/torch':>15}")
    print(header)
    print("-" * len(header))
    for dtype in (np.float32, np.float64):
        peak = matmul_peak(dtype)
        X, Y = make_data(dtype)
        flops = step_flops(E, BATCH) * (N / BATCH)
        ours = median_time(repeats, minimoe_epoch_seconds, X, Y, E, dtype)
        line = f"{np.dtype(dtype).name:<8}{peak:>15.1f}{ours:>11.3f}{flops / ours / 1e9:>9.1f}" \
               f"{100 * flops / ours / 1e9 / peak:>7.1f}%"
        if torch is not None:
            _, reference = minimoe_epoch(X[:BATCH], Y[:BATCH], E, dtype)
            theirs = median_time(repeats, torch_epoch, X, Y, reference, dtype)
            line += f"{theirs:>9.3f}{flops / theirs / 1e9:>9.1f}{100 * flops / theirs / 1e9 / peak:>7.1f}%" \
                    f"{ours / theirs:>15.2f}"
        print(line)

    print("\nminimoe float32 epoch time versus the number of experts")
    X, Y = make_data(np.float32)
    base = None
    print(f"{'E':>4}{'seconds':>10}{'x E=2':>8}{'E / 2':>8}")
    for n_experts in (2, 4, 8, 16, 32):
        seconds = median_time(repeats, minimoe_epoch_seconds, X, Y, n_experts, np.float32)
        base = base or seconds
        print(f"{n_experts:>4}{seconds:>10.3f}{seconds / base:>8.2f}{n_experts / 2:>8.0f}")


if __name__ == "__main__":
    main()
