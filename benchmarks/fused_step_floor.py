"""How fast can a NumPy MMoE epoch be? A lower bound for the setting of ``train_speed.py``.

    python benchmarks/fused_step_floor.py

One training step of the benchmark's MMoE (D=100, E=8 experts of (64,), towers (16,), T=2
regression tasks, batch 512, Adam, float32) written as a single hand-fused function, with none of
the library's structure: every buffer preallocated and reused (``out=``), all gates in one matrix
product and one softmax, both towers as one batched product, Adam in place on one flat buffer. It
trades everything minimoe stands for (modules, checks, readable backward passes) for speed, so its
epoch time is a floor that no NumPy implementation of this model is likely to beat by much.

It answers one question: is "minimoe's epoch at most 0.5x PyTorch eager's" reachable in NumPy on
this machine? It prints this floor next to minimoe's epoch and PyTorch eager's, measured in the
same run (the PyTorch one when torch is installed).
"""

from __future__ import annotations

import time

import numpy as np
import train_speed  # this folder's benchmark: the data, minimoe's epoch and PyTorch's

D, E, H, TOWER, T, N, BATCH = 100, 8, 64, 16, 2, 50_000, 512
DTYPE = np.float32


def init_parameters(rng):
    """One flat parameter buffer and one gradient buffer, with named views into each."""
    shapes = {"W0": (D, E * H), "b0": (E * H,), "Wg": (D, T * E), "bg": (T * E,),
              "W1": (T, H, TOWER), "b1": (T, TOWER), "W2": (T, TOWER, 1), "b2": (T, 1)}
    fan_in = {"W0": D, "b0": D, "Wg": D, "bg": D, "W1": H, "b1": H, "W2": TOWER, "b2": TOWER}
    sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
    flat = np.empty(sum(sizes.values()), DTYPE)
    flat_grad = np.zeros_like(flat)
    params, grads, offset = {}, {}, 0
    for name, shape in shapes.items():
        params[name] = flat[offset:offset + sizes[name]].reshape(shape)
        grads[name] = flat_grad[offset:offset + sizes[name]].reshape(shape)
        bound = 1 / np.sqrt(fan_in[name])
        params[name][...] = rng.uniform(-bound, bound, shape)
        offset += sizes[name]
    return flat, flat_grad, params, grads


def make_step(flat, flat_grad, params, grads, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """A closure doing forward, backward and an Adam update for one batch (x, y)."""
    z_buffer = np.empty((BATCH, E * H), DTYPE)                 # expert pre-activations, then outputs
    mask_buffer = np.empty((BATCH, E * H), bool)
    logit_buffer = np.empty((BATCH, T * E), DTYPE)
    ones = np.ones(BATCH, DTYPE)
    moment1, moment2, scratch = np.zeros_like(flat), np.zeros_like(flat), np.empty_like(flat)
    state = {"t": 0}

    def step(x, y):
        n = len(x)
        z = np.matmul(x, params["W0"], out=z_buffer[:n])
        z += params["b0"]
        np.maximum(z, 0, out=z)
        mask = np.greater(z, 0, out=mask_buffer[:n])
        experts = z.reshape(n, E, H)                                          # (n, E, H)
        gates = np.matmul(x, params["Wg"], out=logit_buffer[:n])
        gates += params["bg"]
        gates = gates.reshape(n, T, E)                                        # softmax in place
        gates -= gates.max(axis=2, keepdims=True)
        np.exp(gates, out=gates)
        gates /= gates.sum(axis=2, keepdims=True)
        mixed = np.matmul(gates, experts).transpose(1, 0, 2)                  # (T, n, H)
        hidden = np.matmul(mixed, params["W1"])                               # (T, n, TOWER)
        hidden += params["b1"][:, None, :]
        np.maximum(hidden, 0, out=hidden)
        scores = np.matmul(hidden, params["W2"])[..., 0] + params["b2"]       # (T, n)

        dscores = (2.0 / n) * (scores - y.T)                                  # squared error, (T, n)
        flat_grad.fill(0)
        grads["b2"][...] = dscores.sum(axis=1, keepdims=True)
        np.matmul(hidden.transpose(0, 2, 1), dscores[..., None], out=grads["W2"])
        dhidden = dscores[..., None] * params["W2"].transpose(0, 2, 1)       # (T, n, TOWER)
        dhidden *= hidden > 0
        grads["b1"][...] = dhidden.sum(axis=1)
        np.matmul(mixed.transpose(0, 2, 1), dhidden, out=grads["W1"])
        dmixed = np.matmul(dhidden, params["W1"].transpose(0, 2, 1)).transpose(1, 0, 2)   # (n, T, H)
        dgates = np.matmul(dmixed, experts.transpose(0, 2, 1))                # (n, T, E)
        dz = np.matmul(gates.transpose(0, 2, 1), dmixed).reshape(n, E * H)    # (n, E * H)
        dz *= mask
        np.matmul(ones[:n], dz, out=grads["b0"])
        np.matmul(x.T, dz, out=grads["W0"])
        dlogits = gates * (dgates - (dgates * gates).sum(axis=2, keepdims=True))
        dlogits = dlogits.reshape(n, T * E)
        grads["bg"][...] = dlogits.sum(axis=0)
        np.matmul(x.T, dlogits, out=grads["Wg"])

        state["t"] += 1
        correction = np.sqrt(1 - beta2 ** state["t"])
        step_size = lr * correction / (1 - beta1 ** state["t"])
        np.multiply(moment1, beta1, out=moment1)
        np.multiply(flat_grad, 1 - beta1, out=scratch)
        np.add(moment1, scratch, out=moment1)
        np.multiply(moment2, beta2, out=moment2)
        np.multiply(flat_grad, flat_grad, out=scratch)
        np.multiply(scratch, 1 - beta2, out=scratch)
        np.add(moment2, scratch, out=moment2)
        np.sqrt(moment2, out=scratch)
        np.add(scratch, eps * correction, out=scratch)
        np.divide(moment1, scratch, out=scratch)
        np.multiply(scratch, step_size, out=scratch)
        np.subtract(flat, scratch, out=flat)

    return step


def fused_epoch(X, Y, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    step = make_step(*init_parameters(rng))
    order = rng.permutation(N)
    started = time.perf_counter()
    for start in range(0, N, BATCH):
        rows = order[start:start + BATCH]
        step(np.take(X, rows, axis=0), np.take(Y, rows, axis=0))
    return time.perf_counter() - started


def main() -> None:
    X, Y = train_speed.make_data(DTYPE)
    repeats = 7
    fused = train_speed.median_time(repeats, fused_epoch, X, Y)
    library = train_speed.median_time(repeats, train_speed.minimoe_epoch_seconds, X, Y, E, DTYPE)
    print(f"float32 epoch, median of {repeats}: hand-fused NumPy step {fused:.3f} s; minimoe {library:.3f} s "
          f"({library / fused:.2f}x the fused step)")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no PyTorch eager epoch to compare with")
        return
    reference = train_speed.minimoe_epoch(X, Y, E, DTYPE)[1]
    eager = train_speed.median_time(repeats, train_speed.torch_epoch, X, Y, reference, DTYPE)
    print(f"PyTorch eager {eager:.3f} s: fused / PyTorch {fused / eager:.2f}, minimoe / PyTorch {library / eager:.2f} "
          f"(the issue's target is minimoe / PyTorch <= 0.5)")


if __name__ == "__main__":
    main()
