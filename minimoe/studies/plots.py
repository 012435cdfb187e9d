"""Plots of the experiments' results. matplotlib is imported here, lazily, so that the library
itself needs only NumPy (``pip install minimoe[lessons]`` brings matplotlib)."""

from __future__ import annotations

import numpy as np

from .experiments import SINGLE_TASK, models_in, own_share, summarize, task_gains, usage_table

COLORS = {"SharedBottom": "tab:gray", "OMoE": "tab:blue", "MMoE": "tab:red", "CGC": "tab:green",
          "PLE": "tab:purple", SINGLE_TASK: "black"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt  # headless machines fall back to the Agg backend by themselves
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'minimoe[lessons]'") from None
    return plt


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_loss_versus(results, key: str, ax, xlabel: str) -> None:
    """Mean test loss with 95% CI error bars per model against ``key``."""
    summary = summarize(results, key)
    for model in models_in(results):
        points = sorted((value, s) for (m, value), s in summary.items() if m == model)
        if points:
            x = [p[0] for p in points]
            ax.errorbar(x, [p[1]["mean"] for p in points], yerr=[p[1]["ci95"] for p in points],
                        marker="o", capsize=3, label=model, color=COLORS.get(model))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test loss (MSE task 0 + task 1)")
    ax.legend()
    ax.grid(alpha=0.3)


def plot_trainability(results, axes, correlations) -> None:
    """Histograms of the final test loss over runs, one panel per correlation."""
    for ax, correlation in zip(axes, correlations):
        losses = {m: [r.test_loss for r in results if r.model == m and r.correlation == correlation]
                  for m in models_in(results)}
        everything = np.concatenate([v for v in losses.values() if v])
        bins = np.linspace(everything.min(), everything.max(), 16)
        for model, values in losses.items():
            if values:
                spread = f" (sd {np.std(values, ddof=1):.3f})" if len(values) > 1 else ""
                ax.hist(values, bins=bins, alpha=0.5, label=model + spread, color=COLORS.get(model))
        ax.set_title(f"correlation {correlation:g}")
        ax.set_xlabel("final test loss")
        ax.set_ylabel("runs")
        ax.yaxis.get_major_locator().set_params(integer=True)     # whole runs, not 2.5
        ax.legend(fontsize=8)


def plot_relatedness(results, path=None):
    """Left: test loss versus task correlation. Right: distributions of final test loss over runs
    (trainability) at the highest and lowest correlation."""
    plt = _pyplot()
    correlations = sorted({r.correlation for r in results}, reverse=True)
    shown = [correlations[0], correlations[-1]] if len(correlations) > 1 else correlations
    fig, axes = plt.subplots(1, 1 + len(shown), figsize=(5.2 * (1 + len(shown)), 4.2))
    plot_loss_versus(results, "correlation", axes[0], "task correlation p")
    axes[0].set_title("test loss versus task relatedness")
    axes[0].invert_xaxis()
    plot_trainability(results, axes[1:], shown)
    return _finish(fig, path)


def plot_experts(results, path=None):
    """Test loss versus the number of experts, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    plot_loss_versus(results, "n_experts", ax, "number of experts E")
    ax.set_xscale("log", base=2)
    n_experts = sorted({r.n_experts for r in results})
    ax.set_xticks(n_experts, [str(e) for e in n_experts])                # 1, 2, 4 rather than 2^0, 2^1
    correlation = sorted({r.correlation for r in results})
    ax.set_title(f"test loss versus number of experts (correlation {', '.join(f'{c:g}' for c in correlation)})")
    return _finish(fig, path)


def plot_gains(results, path=None, key: str = "correlation", xlabel: str = "task correlation p"):
    """The seesaw picture: one panel per task, each multi-task model's gain over the single-task
    models (MSE_k(single-task) - MSE_k(model), paired 95% CI) against ``key``; above 0 the model helps
    that task, below 0 it hurts it."""
    plt = _pyplot()
    gains = task_gains(results, key=key)
    models = [m for m in models_in(results) if m != SINGLE_TASK]
    n_tasks = len(next(iter(gains.values())))
    fig, axes = plt.subplots(1, n_tasks, figsize=(5.4 * n_tasks, 4.2), sharey=True)
    offsets = np.linspace(-0.03, 0.03, len(models)) if len(models) > 1 else [0.0]
    for k, ax in enumerate(np.atleast_1d(axes)):
        for model, offset in zip(models, offsets):
            points = sorted((value, g[k]) for (m, value), g in gains.items() if m == model)
            if points:
                ax.errorbar([p[0] + offset for p in points], [p[1][0] for p in points],
                            yerr=[0 if np.isnan(p[1][1]) else p[1][1] for p in points],
                            marker="o", capsize=3, label=model, color=COLORS.get(model))
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_title(f"task {k}: gain over single-task models")
        ax.set_xlabel(xlabel)
        if key == "correlation":
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("MSE(single-task) - MSE(model)")
    np.atleast_1d(axes)[0].legend()
    return _finish(fig, path)


def plot_usage(results, path=None, key: str = "correlation", run: int = 0):
    """Expert utilization per level. Left: the share of each task's gate weight on its own experts
    (``own_share``; mean and 95% CI over runs) against ``key``, a line per model and level, solid for
    task 0 and dashed for task 1. Right: heat maps of every task's mean gate weight on every expert
    (one run) at the lowest value of ``key``, one per model and level; gaps between groups mark the
    shared and the task experts, blank cells the experts a gate cannot see."""
    plt = _pyplot()
    table = usage_table(results, key)
    curves = sorted({(model, level) for model, level, _ in table},
                    key=lambda c: (models_in(results).index(c[0]), c[1]))
    value = min(getattr(r, key) for r in results if r.usage)
    maps = [(model, level, r.usage[level]) for model, level in curves for r in results
            if r.model == model and r.run == run and getattr(r, key) == value]
    fig = plt.figure(figsize=(6.0 + 3.0 * len(maps), 4.4))
    grid = fig.add_gridspec(2, 1 + len(maps), width_ratios=[2.2] + [1.0] * len(maps), height_ratios=[4, 1])
    ax = fig.add_subplot(grid[:, 0])
    styles = ["-", "--", ":"]
    for model, level in curves:
        points = sorted((v, shares) for (m, lv, v), shares in table.items() if m == model and lv == level)
        for k in range(len(points[0][1])):
            ax.errorbar([p[0] for p in points], [p[1][k][0] for p in points],
                        yerr=[0 if np.isnan(p[1][k][1]) else p[1][k][1] for p in points], capsize=2,
                        marker="o", ms=3, ls=styles[k % 3], color=COLORS.get(model),
                        alpha=1.0 if level == 0 else 0.55,
                        label=f"{model} level {level}, task {k}" if len(curves) > 1 else f"task {k}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("task correlation p" if key == "correlation" else key)
    ax.set_ylabel("gate weight on the task's own experts")
    ax.set_title("own share of the gate weight (MMoE: unmatched part)")
    if key == "correlation":
        ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2)
    for column, (model, level, entry) in enumerate(maps, start=1):
        weights = np.asarray(entry["experts"])                                 # (T, E)
        label_of = {i: ("S" if name == "shared" else "T" + name[4:])
                    for name, columns in entry["groups"].items() for i in columns}
        order, bounds = [], []
        for columns in entry["groups"].values():                               # shared first, then task0, ...
            order += list(columns)
            bounds.append(len(order))
        if not any(name.startswith("task") for name in entry["groups"]):       # MMoE: sorted by the task that leans more
            order = list(np.lexsort((-weights.max(axis=0), weights.argmax(axis=0))))
        shown = np.where(weights[:, order] > 0, weights[:, order], np.nan)
        hm = fig.add_subplot(grid[0, column])
        image = hm.imshow(shown, cmap="viridis", vmin=0, vmax=max(0.5, np.nanmax(shown)), aspect="auto")
        for bound in bounds[:-1]:
            hm.axvline(bound - 0.5, color="white", lw=2)
        hm.set_yticks(range(weights.shape[0]), [f"task {k}" for k in range(weights.shape[0])])
        hm.set_xticks(range(len(order)), [label_of[i] for i in order], fontsize=7)
        share = own_share(entry)
        hm.set_title(f"{model} level {level}\nown share " + ", ".join(f"{s:.2f}" for s in share), fontsize=9)
        fig.colorbar(image, cax=fig.add_subplot(grid[1, column]), orientation="horizontal")
    fig.suptitle(f"expert utilization; heat maps: run {run} at {key} {value:g} (S: shared, Tk: task k's experts)",
                 fontsize=10)
    return _finish(fig, path)
