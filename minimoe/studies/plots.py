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


def failed_runs(results, factor: float = 5.0) -> dict:
    """{(model, correlation): runs} whose test loss exceeds ``factor`` times the median of every run
    at that correlation, where they are a minority of that model's runs there (at most a quarter):
    sporadic runs that gave up a task, which dominate a mean (a model that always fails is not
    listed: its mean says so)."""
    failed: dict = {}
    for correlation in {r.correlation for r in results}:
        here = [r for r in results if r.correlation == correlation]
        limit = factor * float(np.median([r.test_loss for r in here]))
        for model in {r.model for r in here}:
            runs = [r for r in here if r.model == model]
            bad = [r.run for r in runs if r.test_loss > limit]
            if bad and len(bad) <= len(runs) / 4:
                failed[(model, correlation)] = bad
    return failed


def _note_failed(ax, results) -> None:
    """Name the sporadic failed runs (``failed_runs``) under the x axis."""
    failed = failed_runs(results)
    notes = []
    for model in models_in(results):
        cells = [f"{len(runs)} at p = {c:g}" for (m, c), runs in sorted(failed.items(), key=lambda i: -i[0][1])
                 if m == model]
        if cells:
            total = sum(1 for r in results if r.model == model and r.correlation == next(
                c for (m, c) in failed if m == model))
            notes.append(f"{model}: {', '.join(cells)} of {total} runs gave up a task")
    if notes:
        ax.set_xlabel(ax.get_xlabel() + "\n" + "; ".join(notes), fontsize=9)


def plot_relatedness(results, path=None):
    """Left: test loss versus task correlation. Right: distributions of final test loss over runs
    (trainability) at the highest and lowest correlation, or, when the single-task baseline ran,
    each task's gain over it (``plot_gain_panels``)."""
    plt = _pyplot()
    correlations = sorted({r.correlation for r in results}, reverse=True)
    if SINGLE_TASK in models_in(results) and len(models_in(results)) > 1:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
        plot_gain_panels(results, axes[1:])
    else:
        shown = [correlations[0], correlations[-1]] if len(correlations) > 1 else correlations
        fig, axes = plt.subplots(1, 1 + len(shown), figsize=(5.2 * (1 + len(shown)), 4.2))
        plot_trainability(results, axes[1:], shown)
    plot_loss_versus(results, "correlation", axes[0], "task correlation p")
    axes[0].set_title("test loss versus task relatedness")
    axes[0].invert_xaxis()
    _note_failed(axes[0], results)
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


def plot_gain_panels(results, axes, key: str = "correlation", xlabel: str = "task correlation p") -> None:
    """One panel per task: each multi-task model's gain over the single-task models as a share of
    their MSE on that task, (MSE_k(single-task) - MSE_k(model)) / mean MSE_k(single-task), with its
    paired 95% interval scaled alike, against ``key``. Above 0 the model helps the task, below 0 it
    hurts it. A point far off the others' scale (a run that gave up a task) is drawn at the edge and
    labelled with its value."""
    gains = task_gains(results, key=key)
    models = [m for m in models_in(results) if m != SINGLE_TASK]
    span = max(np.ptp([v for _, v in gains]) if len(gains) > 1 else 0.0, 1e-9)
    offsets = np.linspace(-0.02, 0.02, len(models)) * span if len(models) > 1 else [0.0]
    for k, ax in enumerate(axes):
        points = {model: sorted((value, g[k]) for (m, value), g in gains.items() if m == model) for model in models}
        centers = np.array([p[1][2] for pts in points.values() for p in pts])
        typical = 5 * max(float(np.median(np.abs(centers))), 0.05)
        normal = [p for pts in points.values() for p in pts if abs(p[1][2]) <= typical]
        scale = [p[1][2] + sign * (p[1][1] / p[1][0] * p[1][2] if p[1][0] and not np.isnan(p[1][1]) else 0)
                 for p in normal for sign in (-1, 1)]
        low, high = min(scale + [0.0]), max(scale + [0.0])
        pad = 0.1 * (high - low or 1.0)
        low, high = low - pad, high + pad
        for model, offset in zip(models, offsets):
            pts = points[model]
            if not pts:
                continue
            x = np.array([p[0] + offset for p in pts])
            center = np.array([p[1][2] for p in pts])
            half = np.array([0.0 if np.isnan(p[1][1]) or not p[1][0] else abs(p[1][1] / p[1][0] * p[1][2])
                             for p in pts])
            inside = (center >= low) & (center <= high)
            ax.errorbar(x[inside], center[inside], yerr=half[inside], marker="o", capsize=3, label=model,
                        color=COLORS.get(model))
            for xi, ci in zip(x[~inside], center[~inside]):
                edge = high if ci > high else low
                ax.plot([xi], [edge], marker="^" if ci > high else "v", color=COLORS.get(model), ms=8)
                ax.annotate(f"{ci:+.0%}", (xi, edge), textcoords="offset points", xytext=(7, 4 if ci < low else -10),
                            fontsize=7, color=COLORS.get(model))
        ax.set_ylim(low, high)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
        ax.set_title(f"task {k}: gain over the single-task models")
        ax.set_xlabel(xlabel)
        if key == "correlation":
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("(MSE single-task - MSE model) / MSE single-task")
    axes[0].legend(fontsize=8)


def plot_gains(results, path=None, key: str = "correlation", xlabel: str = "task correlation p"):
    """The seesaw picture: ``plot_gain_panels``, one panel per task."""
    plt = _pyplot()
    n_tasks = len(next(iter(task_gains(results, key=key).values())))
    fig, axes = plt.subplots(1, n_tasks, figsize=(5.4 * n_tasks, 4.4), sharey=False)
    plot_gain_panels(results, list(np.atleast_1d(axes)), key, xlabel)
    return _finish(fig, path)


def _heat_map(ax, entry) -> object:
    """One level's (T, E) usage as a heat map: shared experts first, then each task's (white lines
    between groups), blank where a gate cannot see an expert; MMoE's experts sorted by the task that
    leans on them more."""
    weights = np.asarray(entry["experts"])                                 # (T, E)
    label_of = {i: ("S" if name == "shared" else "T" + name[4:])
                for name, columns in entry["groups"].items() for i in columns}
    order, bounds = [], []
    for columns in entry["groups"].values():                               # shared first, then task0, ...
        order += list(columns)
        bounds.append(len(order))
    if not any(name.startswith("task") for name in entry["groups"]):
        order = list(np.lexsort((-weights.max(axis=0), weights.argmax(axis=0))))
    shown = np.where(weights[:, order] > 0, weights[:, order], np.nan)
    image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=0.5, aspect="auto")
    for bound in bounds[:-1]:
        ax.axvline(bound - 0.5, color="white", lw=2)
    ax.set_yticks(range(weights.shape[0]), [f"task {k}" for k in range(weights.shape[0])], fontsize=8)
    ax.set_xticks(range(len(order)), [label_of[i] for i in order], fontsize=7)
    return image


def plot_usage(results, path=None, key: str = "correlation", run: int = 0):
    """Expert utilization per level. Left: the share of each task's gate weight on its own experts
    (``own_share``; mean and 95% CI over runs) against ``key``, a line per model and level, solid for
    task 0 and dashed for task 1. Right: heat maps of every task's mean gate weight on every expert
    in one run, at the highest (top row) and lowest (bottom row) value of ``key``, one column per
    model and level."""
    plt = _pyplot()
    table = usage_table(results, key)
    curves = sorted({(model, level) for model, level, _ in table},
                    key=lambda c: (models_in(results).index(c[0]), c[1]))
    values = sorted({getattr(r, key) for r in results if r.usage}, reverse=True)
    rows = [values[0], values[-1]] if len(values) > 1 else values[:1]
    fig = plt.figure(figsize=(5.5 + 2.3 * len(curves), 1.2 + 2.0 * len(rows)))
    grid = fig.add_gridspec(len(rows), 2 + len(curves), width_ratios=[3.2] + [1.0] * len(curves) + [0.08])
    ax = fig.add_subplot(grid[:, 0])
    styles = ["-", "--", ":"]
    for model, level in curves:
        points = sorted((v, shares) for (m, lv, v), shares in table.items() if m == model and lv == level)
        for k in range(len(points[0][1])):
            ax.errorbar([p[0] for p in points], [p[1][k][0] for p in points],
                        yerr=[0 if np.isnan(p[1][k][1]) else p[1][k][1] for p in points], capsize=2,
                        marker="o", ms=3, ls=styles[k % 3], color=COLORS.get(model),
                        alpha=1.0 if level == 0 else 0.5, label=f"{model} level {level}, task {k}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("task correlation p" if key == "correlation" else key)
    ax.set_ylabel("share of the gate weight on the task's own experts")
    ax.set_title("own experts vs shared (MMoE: weight the other gate does not match)", fontsize=9)
    if key == "correlation":
        ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2)
    image = None
    for row, value in enumerate(rows):
        for column, (model, level) in enumerate(curves, start=1):
            entries = [r.usage[level] for r in results if r.model == model and r.run == run
                       and getattr(r, key) == value and len(r.usage) > level]
            if not entries:
                continue
            hm = fig.add_subplot(grid[row, column])
            image = _heat_map(hm, entries[0])
            share = own_share(entries[0])
            hm.set_title(f"{model} level {level}, p = {value:g}\nown share " + ", ".join(f"{s:.2f}" for s in share),
                         fontsize=8)
    if image is not None:
        fig.colorbar(image, cax=fig.add_subplot(grid[:, -1]), label="mean gate weight")
    fig.suptitle(f"expert utilization per level; heat maps: run {run} (S: shared experts, Tk: task k's own; "
                 "blank: not seen by that gate)", fontsize=9)
    return _finish(fig, path)
