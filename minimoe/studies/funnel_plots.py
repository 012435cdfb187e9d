"""The funnel study's figure (``minimoe funnel --plot``). matplotlib is imported lazily, as in
``plots.py``."""

from __future__ import annotations

import numpy as np

from .experiments import mean_ci95
from .funnel import CVR_MODELS, MILDER, WATCH_MODELS, cell_key, main_cell_key, paired_gap, values
from .plots import _finish, _pyplot

COLORS = {"ESMM": "tab:red", "ESMM-SB": "tab:pink", "ESMM-NS": "tab:brown", "ESMM-MMoE": "tab:orange",
          "clicked-only": "tab:blue", "all-impressions": "tab:gray", "two-task": "tab:green"}
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


def plot_reliability(results, key, ax, title: str, models=("ESMM", "ESMM-SB", "clicked-only", "two-task")) -> None:
    """Mean predicted pCVR against the mean true pCVR in ten groups of test impressions (by
    predicted pCVR), averaged over the cell's runs: a calibrated model lies on the diagonal."""
    runs = [r for r in results if r.study == "cvr" and cell_key(r) == key]
    top = 0.0
    for model in models:
        curves = [np.array(curve) for curve in values(runs, model, "reliability").values()]
        if curves:
            points = np.mean(curves, axis=0)                                  # (bins, 2)
            ax.plot(points[:, 0], points[:, 1], marker="o", color=COLORS[model], label=model)
            top = max(top, points.max())
    ax.set_xlabel("mean predicted pCVR, every test impression")
    ax.set_ylabel("mean true pCVR")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if top == 0.0:
        ax.text(0.5, 0.5, "no runs of this funnel", ha="center", va="center", transform=ax.transAxes)
        return
    ax.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle=":")
    ax.legend(fontsize=8)


def plot_mean_pcvr(results, key, ax) -> None:
    """Bars: each CVR model's mean predicted pCVR over every test impression and over the clicked
    ones, beside the true means."""
    runs = [r for r in results if r.study == "cvr" and cell_key(r) == key]
    models = [m for m in CVR_MODELS if values(runs, m, "mean_pcvr")]
    if not models:
        ax.text(0.5, 0.5, "no runs of this funnel", ha="center", va="center", transform=ax.transAxes)
        return
    for offset, (metric, truth, where) in enumerate((("mean_pcvr", "true_mean_pcvr", "every impression"),
                                                     ("mean_pcvr_clicked", "true_mean_pcvr_clicked", "clicked"))):
        means = [np.mean(list(values(runs, m, metric).values())) for m in models]
        ax.bar(np.arange(len(models)) + (offset - 0.5) * 0.4, means, 0.4, label=where,
               color=("tab:red", "tab:blue")[offset], alpha=0.7)
        ax.axhline(np.mean(list(values(runs, models[0], truth).values())), color=("tab:red", "tab:blue")[offset],
                   linestyle="--", linewidth=1, label=f"true, {where}")
    ax.set_xticks(range(len(models)), models, rotation=30, fontsize=8)
    ax.set_ylabel("mean pCVR")
    ax.set_title("calibration in the large: mean pCVR against the truth")
    ax.legend(fontsize=7)


def plot_funnel(results, settings, path=None):
    """Three rows: the CVR sweep (three panels); learning curves and the watch-time rankings; the
    calibration of pCVR on the entire space (reliability on the main and the milder funnel, and the
    mean pCVR against the truth)."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(16, 13.5))
    cvr = [r for r in results if r.study == "cvr"]
    plot_cvr_sweep(cvr, settings, axes[0])
    plot_learning_curves(cvr, settings, axes[1, 0])
    plot_watch(results, axes[1, 1], "ndcg10", "NDCG@10")
    plot_watch(results, axes[1, 2], "spearman", "Spearman")
    main = main_cell_key(settings)
    milder = tuple(sorted(dict(main, **dict(MILDER)).items()))
    plot_reliability(cvr, main, axes[2, 0], "reliability of pCVR, main funnel")
    plot_reliability(cvr, milder, axes[2, 1], "... milder funnel")
    plot_mean_pcvr(cvr, main, axes[2, 2])
    return _finish(fig, path)


def plot_size_sweep(results, settings, path=None):
    """One row per funnel: entire-space CVR AUC against the training impressions (log scale), the
    paired gap of each ESMM to the clicked-only model, and the mean pCVR against the truth."""
    plt = _pyplot()
    sized = [r for r in results if "n_train" in r.cell]
    funnels = sorted({tuple(sorted((k, v) for k, v in r.cell.items() if k != "n_train")) for r in sized})
    fig, axes = plt.subplots(len(funnels), 3, figsize=(16, 4.5 * len(funnels)), squeeze=False)
    for row, funnel in zip(axes, funnels):
        runs = [r for r in sized if tuple(sorted((k, v) for k, v in r.cell.items() if k != "n_train")) == funnel]
        sizes = sorted({r.cell["n_train"] for r in runs})
        by_size = {n: [r for r in runs if r.cell["n_train"] == n] for n in sizes}
        for model in [m for m in CVR_MODELS if values(runs, m, "cvr_auc")]:
            stats = [mean_ci95(list(values(by_size[n], model, "cvr_auc").values())) for n in sizes]
            row[0].errorbar(sizes, [m for m, _ in stats], yerr=[c for _, c in stats], marker="o", capsize=3,
                            color=COLORS[model], label=model)
            means = [np.mean(list(values(by_size[n], model, "mean_pcvr").values())) for n in sizes]
            row[2].plot(sizes, means, marker="o", color=COLORS[model], label=model)
            if model.startswith("ESMM"):
                gaps = [paired_gap(by_size[n], model, "clicked-only", "cvr_auc")[:2] for n in sizes]
                row[1].errorbar(sizes, [m for m, _ in gaps], yerr=[c for _, c in gaps], marker="o", capsize=3,
                                color=COLORS[model], label=f"{model} - clicked-only")
        truth = [np.mean(list(values(by_size[n], "ESMM", "true_mean_pcvr").values())) for n in sizes]
        row[2].plot(sizes, truth, color="black", linestyle="--", label="true mean pCVR")
        row[0].axhline(0.5, color="black", linewidth=0.8, linestyle=":")
        row[1].axhline(0.0, color="black", linewidth=0.8)
        label = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in funnel)
        for ax, ylabel, title in ((row[0], "CVR AUC, every test impression", f"{label}"),
                                  (row[1], "AUC gap, paired by run", "ESMM minus clicked-only"),
                                  (row[2], "mean pCVR, every test impression", "calibration in the large")):
            ax.set_xscale("log")
            ax.set_xlabel("training impressions")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return _finish(fig, path)
