"""Training a converted minimoe model with PyTorch's DistributedDataParallel (DDP), and the
single-process run it must equal.

Every process holds a copy of the model. A step takes one GLOBAL batch of B rows (the same on
every process: a seeded order, ``global_batches``); process r of W computes the loss and the
gradient on its share, rows [r B/W, (r + 1) B/W) of that batch; DDP averages the W gradients
(an all-reduce over the gloo backend) while the backward pass runs; and every process takes the
same optimizer step. So after N steps the parameters are those of one process that trained on
the whole global batches (``train_steps`` without a process group), up to float rounding: the
sums are added in another order.

Two functions, for two ways of starting the processes:

- ``train_distributed(model, X, Y, ...)`` starts W processes on this machine
  (``torch.multiprocessing.spawn``, gloo on 127.0.0.1 at a free port) and returns the trained
  module in this process. It is a library function rather than a script because spawned
  processes must import the function they run: one defined in a notebook or in ``__main__``
  cannot be.
- ``train_steps(model, X, Y, ...)`` is what each process runs. Started by ``torchrun`` (one
  script, the same on every machine) it trains on several machines::

      # train.py
      import torch.distributed as dist
      import minimoe as mm
      from minimoe.torch import from_torch, train_steps

      dist.init_process_group("gloo")     # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
      model = mm.MMoE(100, seed=0)        # the same seed everywhere (DDP also copies rank 0's weights)
      X, Y = ...                          # the same rows on every process, or at least the same row numbering
      run = train_steps(model, X, Y, steps=1000, batch_size=1024, optimizer="adam", lr=1e-3)
      if dist.get_rank() == 0:
          from_torch(run.module, model).save("mmoe.npz")
      dist.destroy_process_group()

  run on each of two machines with two processes each, the first machine at HOST0, as

      torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d --rdzv-endpoint=HOST0:29500 train.py

  (or with a static master: ``torchrun --nnodes=2 --nproc-per-node=2 --node-rank=<0 or 1>
  --master-addr=HOST0 --master-port=29500 train.py``; torchrun exports MASTER_ADDR and
  MASTER_PORT to the processes, and ``init_process_group`` reads them). On GPUs use the "nccl"
  backend and move the module and the batches to each process's device.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..losses import MultiTaskLoss as NumpyMultiTaskLoss
from .convert import to_torch, torch_inputs
from .losses import task_loss_sums

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


@dataclass
class TrainingRun:
    """What a training run gives back: the trained ``module`` (convert it back with ``from_torch``),
    ``losses`` (steps,), the objective of each global batch before its update, and the wall-clock
    ``seconds`` (with ``train_distributed``: starting the processes included)."""

    module: nn.Module
    losses: np.ndarray
    seconds: float


def global_batches(n_rows: int, batch_size: int, steps: int, seed: int = 0) -> list[np.ndarray]:
    """``steps`` batches of ``batch_size`` row indices, the same on every process: the rows in a
    seeded random order, a new order each epoch, and an epoch's last incomplete batch left out so
    that every batch, and every process's share of it, has the same size."""
    if not 0 < batch_size <= n_rows:
        raise ValueError(f"batch_size must lie in [1, {n_rows}] (the rows), got {batch_size}")
    rng, per_epoch, batches = np.random.default_rng(seed), n_rows // batch_size, []
    while len(batches) < steps:
        order = rng.permutation(n_rows)
        batches += [order[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch)]
    return batches[:steps]


def train_steps(model, X, Y, *, steps: int, batch_size: int, optimizer: str = "sgd", lr: float = 0.01,
                loss=None, seed: int = 0) -> TrainingRun:
    """``steps`` optimizer steps on ``to_torch(model)`` over ``global_batches(len(X), batch_size,
    steps, seed)``, in training mode; ``model`` itself is not changed.

    In a process of an initialised process group (W processes, rank r) the module is wrapped in
    DistributedDataParallel and trains on rows [r B/W, (r + 1) B/W) of each global batch of B rows
    (B must be a multiple of W); otherwise it trains on the whole batches, the single-process
    reference. ``optimizer``: "sgd" or "adam" with learning rate ``lr``; ``loss``: a minimoe
    ``MultiTaskLoss`` (static task weights; default weights 1). X: (N, D) or a FeatureBatch,
    Y: (N, T), NaN = a missing label.

    The sum/mean convention. minimoe's loss is, per task, a mean over the batch's labelled rows,
    and DDP AVERAGES the W processes' gradients. So process r's objective is
    combine(W * S_r / N_k) (+ its auxiliary loss): S_r (T,) sums its own rows' losses and N_k counts
    task k's labelled rows in the whole GLOBAL batch (an all-reduce of the W counts). The average of
    the W gradients is then sum_r (W S_r / N_k) / W = (sum_r S_r) / N_k per task: exactly the global
    batch's mean, with missing labels too, and the loss combines task means affinely, so the
    gradient is the single-process one. (With all labels present and equal shares, W S_r / B is
    simply process r's own mean.) Two things are not sums over rows, so they match a
    single-process run only in expectation: the load-balancing loss, computed on each process's
    share of the batch (as large mixture-of-experts systems do per device), and the expert
    dropout, drawn by each process.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
    if loss is not None and type(loss) is not NumpyMultiTaskLoss:
        raise ValueError(f"train_steps trains with a MultiTaskLoss (static weights), got {type(loss).__name__}")
    X = model.check_inputs(X)
    Y = model.check_targets("Y", Y, len(X))
    criterion = to_torch(loss if loss is not None else NumpyMultiTaskLoss(model.tasks))
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the {world} processes (equal shares)")
    module = to_torch(model).train()
    net = DistributedDataParallel(module) if distributed else module
    step = OPTIMIZERS[optimizer](net.parameters(), lr=lr)
    started, losses = time.perf_counter(), []
    for rows in global_batches(len(X), batch_size, steps, seed):
        mine = rows.reshape(world, -1)[rank]                                # this process's share, (B/W,)
        scores = net(torch_inputs(X[mine], module))                         # (B/W, T)
        sums, counts = task_loss_sums(scores, torch.as_tensor(Y[mine]), criterion.kinds)   # (T,), (T,)
        if distributed:
            dist.all_reduce(counts)                                         # the global batch's labelled rows
        objective = criterion.combine(world * sums / counts.clamp(min=1)) + module.auxiliary_loss()
        step.zero_grad()
        objective.backward()                                                # DDP averages the gradients here
        step.step()
        total = objective.detach().clone()
        if distributed:
            dist.all_reduce(total)
        losses.append(float(total) / world)                                 # the global batch's objective
    return TrainingRun(module.eval(), np.array(losses), time.perf_counter() - started)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawned_process(rank: int, world_size: int, port: int, job: dict, result_path: str) -> None:
    """One of ``train_distributed``'s processes: join the group, train, and (rank 0) save the result."""
    torch.set_num_threads(1)                               # W processes share the machine's cores
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo talks over the loopback interface
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        run = train_steps(**job)
        if rank == 0:
            arrays = {f"param/{name}": p.detach().numpy() for name, p in run.module.named_parameters()}
            np.savez(result_path, losses=run.losses, **arrays)
    finally:
        dist.destroy_process_group()


def default_start_method() -> str:
    """"fork" where the platform has it (Linux): the processes start as copies of this one, torch
    already imported, instead of spending seconds each on importing it again; "spawn" elsewhere."""
    return "fork" if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() else "spawn"


def train_distributed(model, X, Y, *, world_size: int = 2, steps: int, batch_size: int, optimizer: str = "sgd",
                      lr: float = 0.01, loss=None, seed: int = 0, start_method: str | None = None) -> TrainingRun:
    """``train_steps`` on ``world_size`` processes on this machine, with DistributedDataParallel:
    gloo on 127.0.0.1 at a free port, each process on its share of every global batch. Returns the
    trained module in this process (rank 0's parameters; every rank holds the same), the losses
    and the seconds, starting the processes included. ``model`` is not changed: copy the result
    into it with ``from_torch(run.module, model)``. Arguments as ``train_steps``; see the module's
    docstring for several machines (torchrun).

    ``start_method``: how the processes start, "fork" (the default on Linux: copies of this
    process, torch already loaded; each sets torch to one thread before its first operation, as
    DataLoader workers do, which keeps OpenMP safe after a fork) or "spawn" (fresh interpreters
    that import torch and minimoe: seconds more each; there a script must guard its own code
    with ``if __name__ == "__main__":``, since each process imports it).
    """
    job = dict(model=model, X=X, Y=Y, steps=steps, batch_size=batch_size, optimizer=optimizer, lr=lr, loss=loss,
               seed=seed)
    started = time.perf_counter()
    start_method = start_method or default_start_method()
    if start_method == "fork":
        # DistributedDataParallel imports TorchDynamo (and sympy) the first time one is built: seconds
        # of imports. Imported here once, before the fork, every process inherits it instead of
        # importing it at the same time as the others.
        import torch._dynamo  # noqa: F401
    with tempfile.TemporaryDirectory() as folder:
        result_path = os.path.join(folder, "rank0.npz")
        mp.start_processes(_spawned_process, args=(world_size, free_port(), job, result_path), nprocs=world_size,
                           join=True, start_method=start_method)
        with np.load(result_path) as saved:
            losses = saved["losses"]
            trained = {key[len("param/"):]: saved[key] for key in saved.files if key.startswith("param/")}
    module = to_torch(model).eval()
    with torch.no_grad():
        for name, tensor in module.named_parameters():
            tensor.copy_(torch.from_numpy(trained[name]))
    return TrainingRun(module, losses, time.perf_counter() - started)
