"""The funnel study's figure (``minimoe funnel --plot``). matplotlib is imported lazily, as in
``plots.py``."""

from __future__ import annotations

import numpy as np

from .experiments import mean_ci95
from .funnel import WATCH_MODELS, cell_key, main_cell_key, paired_gap, values
from .plots import _finish, _pyplot

COLORS = {"ESMM": "tab:red", "ESMM-MMoE": "tab:orange", "clicked-only": "tab:blue", "all-impressions": "tab:gray",
          "two-task": "tab:green"}
WATCH_COLORS = {"zero-filled": "tab:gray", "zero-filled x pCTR": "tab:purple", "clicked-rows x pCTR": "tab:blue",
                "ESMM-style": "tab:red"}


def _line(ax, results, knob: str, fixed: dict, model: str, metric: str = "cvr_auc", **style) -> None:
    """Mean +- 95% CI of a model's metric against one knob, the other knobs at ``fixed``."""
    points = []
    for key in sorted({cell_key(r) for r in results}):
        cell = dict(key)
        if all(cell[k] == v for k, v in fixed.items() if k != knob):
            runs = values([r for r in results if cell_key(r) == key], model, metric)
            if len(runs) > 1:
                points.append((cell[knob], *mean_ci95(list(runs.values()))))
    if points:
        x, mean, ci = map(np.array, zip(*sorted(points)))
        ax.errorbar(x, mean, yerr=ci, marker="o", capsize=3, **style)


def plot_cvr_sweep(results, settings, axes) -> None:
    """Entire-space CVR AUC against selection bias and against click rate (the other knobs at the
    main funnel's); and the paired gap ESMM - clicked-only, on every impression and on the clicked
    rows, against selection bias, at each click sharpness of the sweep."""
    fixed = dict(main_cell_key(settings))
    for ax, knob, label in ((axes[0], "selection_bias", "selection bias s"), (axes[1], "click_rate", "click rate")):
        for model in ("ESMM", "clicked-only", "all-impressions", "two-task"):
            _line(ax, results, knob, fixed, model, color=COLORS[model], label=model)
        ax.set_xlabel(label)
        ax.set_ylabel("CVR AUC, every test impression")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"pCVR on the entire space vs selection bias (click sharpness {fixed['click_sharpness']:g})")
    axes[1].set_title(f"... vs click rate (selection bias {fixed['selection_bias']:g}, "
                      f"sharpness {fixed['click_sharpness']:g})")
    axes[0].legend(fontsize=8)
    ax = axes[2]
    keys = sorted({cell_key(r) for r in results})
    sharpnesses = sorted({dict(key)["click_sharpness"] for key in keys}, reverse=True)
    for sharpness, color in zip(sharpnesses, ("tab:red", "tab:blue", "tab:gray", "tab:green")):
        for metric, where, style in (("cvr_auc", "every impression", "-"), ("cvr_auc_clicked", "clicked rows", "--")):
            points = []
            for key in keys:
                cell = dict(key)
                if cell["click_rate"] == fixed["click_rate"] and cell["click_sharpness"] == sharpness:
                    mean, ci, n = paired_gap([r for r in results if cell_key(r) == key], "ESMM", "clicked-only",
                                             metric)
                    if n > 1:
                        points.append((cell["selection_bias"], mean, ci))
            if points:
                x, mean, ci = map(np.array, zip(*points))
                ax.errorbar(x, mean, yerr=ci, marker="o", capsize=3, linestyle=style, color=color,
                            label=f"sharpness {sharpness:g}, {where}")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("selection bias s")
    ax.set_ylabel("AUC of ESMM minus clicked-only (paired)")
    ax.set_title("what the clicked rows show vs the truth")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_learning_curves(results, settings, ax) -> None:
    """Entire-space CVR AUC on the test split after each epoch (mean over the main funnel's runs),
    against epochs over the impressions (the clicked-only model's shorter epochs rescaled)."""
    main = main_cell_key(settings)
    runs = [r for r in results if r.study == "cvr" and cell_key(r) == main]
    drawn = 0
    for model in ("ESMM", "ESMM-MMoE", "two-task", "clicked-only", "all-impressions"):
        curves = [curve for curve in values(runs, model, "curve_cvr_auc").values() if curve]
        if not curves:
            continue
        drawn += 1
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        epochs = np.arange(1, length + 1, dtype=float)
        if model == "clicked-only":                                  # its epochs are over the clicked rows
            epochs *= np.mean([r.clicked_train for r in runs]) / settings.n_train
        ax.plot(epochs, mean, color=COLORS[model], label=model)
    if not drawn:
        ax.text(0.5, 0.5, "no learning curves recorded\n(FunnelSettings(curves=True), as with --full)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epochs over the training impressions")
    ax.set_ylabel("test CVR AUC, every impression")
    ax.set_title(f"learning curves (mean of {len(runs)} runs, up to the shortest)")
    if drawn:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_watch(results, ax, metric: str = "ndcg10", label: str = "NDCG@10") -> None:
    """Bars: each watch-time model's metric (mean +- 95% CI) at each watch quality."""
    watch = [r for r in results if r.study == "watch"]
    keys = sorted({cell_key(r) for r in watch})
    width = 0.8 / len(WATCH_MODELS)
    for i, model in enumerate(WATCH_MODELS):
        stats = [mean_ci95(list(values([r for r in watch if cell_key(r) == key], model, metric).values()))
                 for key in keys]
        if stats:
            ax.bar(np.arange(len(keys)) + (i - (len(WATCH_MODELS) - 1) / 2) * width, [s[0] for s in stats], width,
                   yerr=[s[1] for s in stats], capsize=2, color=WATCH_COLORS[model], label=model)
    ax.set_xticks(range(len(keys)), [f"watch quality {dict(key)['watch_quality']:g}" for key in keys])
    low = min((np.mean(list(values(watch, m, metric).values())) for m in WATCH_MODELS), default=0.5)
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel(label + " of the expected watch time")
    ax.set_title(f"ranking by expected watch time: {label}")
    ax.legend(fontsize=7, loc="lower right")


def plot_funnel(results, settings, path=None):
    """Two rows: the CVR sweep (three panels), then learning curves and the watch-time rankings."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    cvr = [r for r in results if r.study == "cvr"]
    plot_cvr_sweep(cvr, settings, axes[0])
    plot_learning_curves(cvr, settings, axes[1, 0])
    plot_watch(results, axes[1, 1], "ndcg10", "NDCG@10")
    plot_watch(results, axes[1, 2], "spearman", "Spearman")
    return _finish(fig, path)
