"""Plots of the experiments' results. matplotlib is imported here, lazily, so that the library
itself needs only NumPy (``pip install minimoe[lessons]`` brings matplotlib)."""

from __future__ import annotations

import numpy as np

from .experiments import MODELS, summarize

COLORS = {"SharedBottom": "tab:gray", "OMoE": "tab:blue", "MMoE": "tab:red"}


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
    for model in MODELS:
        points = sorted((value, s) for (m, value), s in summary.items() if m == model)
        if points:
            x = [p[0] for p in points]
            ax.errorbar(x, [p[1]["mean"] for p in points], yerr=[p[1]["ci95"] for p in points],
                        marker="o", capsize=3, label=model, color=COLORS[model])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test loss (MSE task 0 + task 1)")
    ax.legend()
    ax.grid(alpha=0.3)


def plot_trainability(results, axes, correlations) -> None:
    """Histograms of the final test loss over runs, one panel per correlation."""
    for ax, correlation in zip(axes, correlations):
        losses = {m: [r.test_loss for r in results if r.model == m and r.correlation == correlation]
                  for m in MODELS}
        everything = np.concatenate([v for v in losses.values() if v])
        bins = np.linspace(everything.min(), everything.max(), 16)
        for model, values in losses.items():
            if values:
                ax.hist(values, bins=bins, alpha=0.5, label=f"{model} (sd {np.std(values, ddof=1):.3f})",
                        color=COLORS[model])
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
