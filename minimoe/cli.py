"""The ``minimoe`` command: ``gradcheck``, ``compare``, ``seesaw``, ``experts``, ``census`` and ``funnel``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .studies import census as census_study
from .studies import experiments
from .studies import gradcheck_table as selfcheck


def _plots():
    from .studies import plots  # matplotlib only when a plot is asked for
    return plots


def _gradcheck(args) -> int:
    started = time.perf_counter()
    rows = selfcheck.run(args.seed)
    print(selfcheck.LEGEND)
    print(selfcheck.format_rows(rows))
    failed = [row for row in rows if not row[2] < row[3]]
    declared = sum(note.startswith("declared zero") for *_, note in rows)
    print(f"\n{len(rows) - len(failed)}/{len(rows)} rows within their limit ({declared} declared structurally zero; "
          f"float64, central differences, step 1e-6) in {time.perf_counter() - started:.1f}s")
    for label, row, error, _, note in failed:
        print(f"FAILED  {label}  {row}: {error:.2e}  {note}")
    return 1 if failed else 0


def _settings(args, base: experiments.Settings) -> experiments.Settings:
    # --lr sets one learning rate for every model, replacing the per-model defaults.
    lr_overrides = {"lr": args.lr, "model_lr": ()} if args.lr is not None else {}
    return experiments.with_overrides(base, epochs=args.epochs, n_train=args.n_train, seed=args.seed,
                                      **lr_overrides)


def _describe(settings: experiments.Settings) -> str:
    data = ""
    if settings.scale != 1.0 or settings.noise_std != 0.1:
        data = f", label scale c {settings.scale}, noise sd {settings.noise_std}"
    return (f"{settings.n_train} training / {settings.n_test} test rows, D={settings.n_features}{data}, "
            f"{settings.epochs} epochs, batch {settings.batch_size}, Adam lr {settings.lr:g}"
            + "".join(f" ({model}: {lr:g})" for model, lr in settings.model_lr) + f", seed {settings.seed}")


def _save_json(path, runs_by_regime: dict) -> None:
    """Every run's result as a list of dicts, each naming its regime (or setting)."""
    rows = [dict(row, **({"regime": regime} if regime else {}))
            for regime, results in runs_by_regime.items() for row in experiments.results_as_dicts(results)]
    with open(path, "w") as stream:
        json.dump(rows, stream, indent=1)
    print(f"results written to {path}")


def _suffixed(path: str, suffix: str, several: bool) -> str:
    """FILE.png -> FILE-suffix.png when one command writes several figures."""
    if not several:
        return path
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-{suffix}.{ext}" if dot else f"{path}-{suffix}"


def _finish(results, args, plot, key: str) -> None:
    print(experiments.format_table(results, key=key))
    if args.save_json:
        _save_json(args.save_json, {"": results})
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")


def _study_tables(results, models) -> None:
    """The tables every synthetic study prints, for the models it ran."""
    print(experiments.format_table(results))
    if experiments.SINGLE_TASK in models and len(models) > 1:
        print("\nEach task's gain over the single-task models (the PLE paper's measure):")
        print(experiments.format_gains(results))
    if {"CGC", "PLE"} & set(models):
        print("\nExpert utilization per level:")
        print(experiments.format_usage(results))


def _correlations(args, default) -> list[float]:
    return args.correlations or ([args.correlation] if args.correlation is not None else list(default))


def _compare(args) -> int:
    models = args.models or list(experiments.MODELS)
    # Both regimes by default: the narrow one is where claim 2 (OMoE against MMoE) shows; with --full,
    # or with other models (which cannot be sized down to 2 one-unit experts), the paper's sizes.
    default = "both" if not args.full and set(models) <= set(experiments.MODELS) else "paper"
    regime = args.regime or default
    regime_names = ["paper", "narrow"] if regime == "both" else [regime]
    correlations = _correlations(args, [1.0, 0.9, 0.5, 0.0, -0.5])
    runs = args.runs if args.runs is not None else (20 if args.full else 5)
    collected, started_all = {}, time.perf_counter()
    if len(regime_names) > 1:
        print("The MMoE paper's three claims, measured in two regimes (--regime paper or narrow runs one; --full "
              "runs the paper-sized study)\n")
    for index, name in enumerate(regime_names):
        regime = experiments.REGIMES[name]
        settings = _settings(args, regime.full if args.full else regime.quick)
        if index:
            print("\n" + "=" * 100 + "\n")
        print(f"Regime {name!r}{' (--full)' if args.full else ''}: {regime.description}")
        results = _run_study(models, correlations, runs, settings, args)
        claims = experiments.claims_report(results)
        if claims:
            print(f"\nThe MMoE paper's claims in the {name!r} regime:\n{claims}")
        collected[name] = results
    if len(regime_names) > 1:
        print(f"\nboth regimes in {time.perf_counter() - started_all:.0f}s")
    _write_figures(args, collected, lambda r, p: _plots().plot_relatedness(r, p))
    return 0


def _run_study(models, correlations, runs: int, settings, args) -> list:
    """Say what runs, run it (``--jobs`` processes), print its tables; the runs' results."""
    print(f"{', '.join(models)} at correlations {correlations}, {runs} run(s) each: {_describe(settings)}")
    print(experiments.describe_sizes(models, settings), flush=True)
    started = time.perf_counter()
    results = experiments.relatedness(correlations, runs, models=models, settings=settings, jobs=args.jobs,
                                      progress=not args.quiet)
    print(f"done in {time.perf_counter() - started:.0f}s\n")
    _study_tables(results, models)
    return results


def _write_figures(args, collected: dict, plot) -> None:
    if args.save_json:
        _save_json(args.save_json, collected)
    several = len(collected) > 1
    for name, results in collected.items():
        if args.plot:
            path = _suffixed(args.plot, name, several)
            plot(results, path)
            print(f"plot written to {path}")
        if getattr(args, "usage_plot", None) and any(r.usage for r in results):
            path = _suffixed(args.usage_plot, name, several)
            mixtures = [r for r in results if r.model not in ("OMoE",) and r.usage]
            _plots().plot_usage(mixtures, path)
            print(f"utilization plot written to {path}")


def _seesaw(args) -> int:
    models = [experiments.SINGLE_TASK] + [m for m in (args.models or list(experiments.SEESAW_MODELS))
                                          if m != experiments.SINGLE_TASK]
    base = experiments.SEESAW_FULL if args.full else experiments.SEESAW_QUICK
    overrides = {"scale": tuple(args.scale) if args.scale else None,
                 "noise_std": tuple(args.noise) if args.noise else None}
    settings = experiments.with_overrides(_settings(args, base), **overrides)
    correlations = _correlations(args, experiments.SEESAW_CORRELATIONS)
    runs = args.runs if args.runs is not None else (20 if args.full else 5)
    print(f"The seesaw: {experiments.SEESAW_DESCRIPTION}")
    results = _run_study(models, correlations, runs, settings, args)
    print("\n" + experiments.seesaw_summary(results))
    _write_figures(args, {"seesaw": results}, lambda r, p: _plots().plot_gains(r, p))
    return 0


def _experts(args) -> int:
    settings = _settings(args, experiments.FULL if args.full else experiments.QUICK)
    runs = args.runs if args.runs is not None else (10 if args.full else 3)
    print(f"OMoE and MMoE with {args.experts} experts at correlation {args.correlation}, {runs} run(s) each: "
          f"{_describe(settings)}", flush=True)
    started = time.perf_counter()
    results = experiments.experts_sweep(args.experts, args.correlation, runs, settings=settings,
                                        jobs=args.jobs, progress=not args.quiet)
    print(f"done in {time.perf_counter() - started:.0f}s\n")
    _finish(results, args, lambda r, p: _plots().plot_experts(r, p), "n_experts")
    return 0


def _census(args) -> int:
    from .data.census import load_census
    data = load_census(group=args.group, data_home=args.data_home, seed=args.split_seed,
                       download=not args.no_download)
    settings = census_study.CensusSettings(**({"epochs": args.epochs} if args.epochs is not None else {}))
    n_train, n_val, n_test = (len(part[0]) for part in (data.train, data.validation, data.test))
    print(f"Census-Income group {args.group} ({' and '.join(data.task_names)}): {n_train:,} train / "
          f"{n_val:,} validation / {n_test:,} test rows; models {args.models}, seeds {args.seeds}", flush=True)
    results = []
    for name in args.models:
        for seed in args.seeds:
            result = census_study.train_on_census(name, data, seed, settings, progress=not args.quiet)
            results.append(result)
            print(f"{name} seed {seed}: " + ", ".join(f"{t} AUC {a:.4f}" for t, a in result.auc.items())
                  + f" ({result.seconds:.1f}s, best epoch {result.best_epoch})", flush=True)
    print()
    print(census_study.format_results(results, data.task_names))
    return 0


def _funnel(args) -> int:
    import os
    from dataclasses import asdict

    from .checks import check_positive_int
    from .studies import funnel as study
    settings = study.with_overrides(study.FULL if args.full else study.QUICK, lr=args.lr, max_epochs=args.epochs,
                                    patience=args.patience, fixed_epochs=args.fixed_epochs, n_train=args.n_train,
                                    seed=args.seed, selection=args.select, ctcvr_weight=args.ctcvr_weight,
                                    selection_bias=args.selection_bias, click_sharpness=args.click_sharpness,
                                    click_rate=args.click_rate)
    runs = check_positive_int("runs", args.runs if args.runs is not None else (10 if args.full else 5))
    sweep = () if args.main_only else (study.SWEEP_CELLS if args.full else ((("selection_bias", 0.0),),))
    qualities = () if args.main_only else (study.WATCH_QUALITIES if args.full else (0.9,))
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    training = (f"{settings.fixed_epochs} epochs, no early stopping" if settings.fixed_epochs else
                f"at most {settings.max_epochs} epochs, early stopping (patience {settings.patience}): "
                f"{study.SELECTIONS[settings.selection]}")
    sizes = None if args.sweep_size is None else (tuple(args.sweep_size) or study.SIZES)
    if sizes:
        settings = study.with_overrides(settings, curves=True)        # the sweep looks at the learning curves
    data = (f"{', '.join(f'{n:,}' for n in sizes)} training impressions (validation: a quarter as many)"
            if sizes else f"{settings.n_train:,} training / {settings.n_validation:,} validation impressions")
    print(f"Funnels, {runs} run(s) per cell: {data}, {settings.n_test:,} test impressions, Adam lr {settings.lr:g}, "
          f"batch {settings.batch_size}, {training}, seed {settings.seed}", flush=True)
    started = time.perf_counter()
    if sizes:
        results = study.run_many(study.size_specs(runs, sizes), settings, jobs, progress=not args.quiet)
    else:
        results = study.run_study(runs, settings, sweep, qualities, mmoe=args.full, jobs=jobs, progress=not args.quiet)
    print(f"done in {time.perf_counter() - started:.0f}s\n")
    print(study.format_size_sweep(results) if sizes else study.format_study(results, settings))
    if args.save_json:
        with open(args.save_json, "w") as stream:
            json.dump({"settings": asdict(settings), "results": study.results_as_dicts(results)}, stream, indent=1)
        print(f"results written to {args.save_json}")
    if args.plot:
        from .studies import funnel_plots
        (funnel_plots.plot_size_sweep if sizes else funnel_plots.plot_funnel)(results, settings, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _add_funnel_command(commands) -> None:
    funnel = commands.add_parser("funnel", help="ESMM against the CVR models it replaces, on funnels",
                                 description="ESMM against clicked-only and all-impressions CVR models on a funnel "
                                 "with selection bias, judged on every impression; the watch-time question")
    funnel.add_argument("--full", action="store_true", help="the whole study: 10 runs, the selection-bias and "
                        "click-rate sweep, ESMM on MMoE, two watch-time funnels (about 9 minutes on 2 cores)")
    funnel.add_argument("--runs", type=int, help="funnels per cell (default 5, --full 10)")
    funnel.add_argument("--main-only", action="store_true", help="only the main funnel's CVR table")
    funnel.add_argument("--selection-bias", type=float, help="the main funnel's selection bias in [0, 1] (default 0.9)")
    funnel.add_argument("--click-sharpness", type=float, help="the main funnel's click sharpness: the scale of the "
                        "click logit (default 3)")
    funnel.add_argument("--click-rate", type=float, help="the main funnel's mean pCTR (default 0.08)")
    funnel.add_argument("--lr", type=float, help="Adam's learning rate (default 3e-3)")
    funnel.add_argument("--epochs", type=int, help="at most this many epochs (default 40)")
    funnel.add_argument("--patience", type=int, help="early stopping after this many epochs without a better "
                        "validation criterion (default 5)")
    funnel.add_argument("--fixed-epochs", type=int, help="train exactly this many epochs, no early stopping "
                        "(the clicked-only model: as many optimizer steps)")
    funnel.add_argument("--sweep-size", type=int, nargs="*", metavar="N",
                        help="instead: ESMM, ESMM-SB and the clicked-only model at these numbers of training "
                             "impressions (default 10000 20000 50000 100000 200000), on the main and the milder funnel")
    funnel.add_argument("--select", choices=("cvr", "own", "ctcvr"),
                        help="early stopping of the CVR models on the log loss of pCVR on the clicked validation rows "
                             "(cvr, the default), on their own training loss (own), or, for ESMM, on its CTCVR "
                             "validation loss (ctcvr)")
    funnel.add_argument("--ctcvr-weight", type=float, help="ESMM's loss: BCE(click) + this x BCE(click and "
                        "conversion) (default 1, the paper's)")
    funnel.add_argument("--n-train", type=int, help="training impressions per funnel")
    funnel.add_argument("--seed", type=int, help="base seed; every run's seeds derive from it")
    funnel.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    funnel.add_argument("--plot", metavar="FILE.png", help="save a plot (needs matplotlib)")
    funnel.add_argument("--save-json", metavar="FILE.json", help="save the settings and every run's result")
    funnel.add_argument("--quiet", action="store_true", help="no progress bar")
    funnel.set_defaults(handler=_funnel)


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="fresh data sets per cell (compare, seesaw: 5, --full 20; "
                        "experts: 3, --full 10)")
    parser.add_argument("--epochs", type=int, help="training epochs per run")
    parser.add_argument("--lr", type=float, help="one Adam learning rate for every model "
                        "(default: 1e-2, and 1e-3 for Shared-Bottom)")
    parser.add_argument("--n-train", type=int, help="training rows per run")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--seed", type=int, help="base seed; every run's seeds derive from it")
    parser.add_argument("--full", action="store_true", help="the paper-sized study: 10,000 training rows, 30 "
                        "epochs, 20 runs (minutes, not seconds)")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot (needs matplotlib)")
    parser.add_argument("--save-json", metavar="FILE.json", help="save every run's result")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class _OneLinePerCommand(argparse.RawDescriptionHelpFormatter):
    """Every command and its help on one line: argparse measures the commands two columns shallower
    than it prints them, so without the margin "gradcheck" wraps."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=24, width=100)

    def add_argument(self, action):
        super().add_argument(action)
        self._action_max_length += 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimoe", description="Multi-task learning for recommendation from "
                                     "first principles in NumPy:\nShared-Bottom, OMoE, MMoE, CGC, PLE and ESMM.",
                                     formatter_class=_OneLinePerCommand)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    check = commands.add_parser("gradcheck", help="every backward pass against central differences")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(handler=_gradcheck)
    compare = commands.add_parser("compare", help="the MMoE paper's synthetic study and its claims")
    compare.add_argument("--models", nargs="+", metavar="MODEL",
                         help=f"models to compare, at about MMoE's parameter count (default: "
                              f"{' '.join(experiments.MODELS)}; any of {' '.join(experiments.STUDY_MODELS)}; "
                              f"SingleTask: one model per task)")
    compare.add_argument("--regime", choices=("both", "paper", "narrow"),
                         help="paper: the MMoE paper's sizes; narrow: 2 experts of 1 unit (default: both for the "
                              "quick run of Shared-Bottom, OMoE and MMoE; paper with --full or other models)")
    compare.add_argument("--correlation", type=float, help="one task correlation in [-1, 1]")
    compare.add_argument("--correlations", type=float, nargs="+", help="several correlations")
    _add_study_options(compare)
    compare.add_argument("--usage-plot", metavar="FILE.png",
                         help="save the expert-utilization figure (needs matplotlib)")
    compare.set_defaults(handler=_compare)
    seesaw = commands.add_parser("seesaw", help="each task's gain over single-task models")
    seesaw.add_argument("--models", nargs="+", metavar="MODEL",
                        help=f"multi-task models (default: {' '.join(experiments.SEESAW_MODELS)}); the single-task "
                             f"baseline always runs")
    seesaw.add_argument("--correlation", type=float, help="one task correlation in [-1, 1]")
    seesaw.add_argument("--correlations", type=float, nargs="+",
                        help=f"several correlations (default: {' '.join(map(str, experiments.SEESAW_CORRELATIONS))})")
    seesaw.add_argument("--scale", type=float, nargs=2, metavar=("C0", "C1"), help="each task's label scale c")
    seesaw.add_argument("--noise", type=float, nargs=2, metavar=("SD0", "SD1"), help="each task's label noise sd")
    _add_study_options(seesaw)
    seesaw.add_argument("--usage-plot", metavar="FILE.png",
                        help="save the expert-utilization figure (needs matplotlib)")
    seesaw.set_defaults(handler=_seesaw)
    sweep = commands.add_parser("experts", help="OMoE and MMoE against the number of experts")
    sweep.add_argument("--experts", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    sweep.add_argument("--correlation", type=float, default=0.5)
    _add_study_options(sweep)
    sweep.set_defaults(handler=_experts)
    census = commands.add_parser("census", help="the models on Census-Income, AUC per task")
    census.add_argument("--group", type=int, choices=(1, 2), default=1,
                        help="1: income > 50K and never married; 2: college education and never married")
    census.add_argument("--data-home", help="folder with census-income.data(.gz) and/or census-income.test(.gz) "
                        "(default: $MINIMOE_DATA, else ~/.minimoe/data)")
    census.add_argument("--models", nargs="+", default=["SharedBottom", "OMoE", "MMoE"],
                        choices=list(census_study.STUDY_MODELS))
    census.add_argument("--seeds", type=int, nargs="+", default=[0], help="one training run per seed")
    census.add_argument("--epochs", type=int, help="at most this many epochs (early stopping on validation)")
    census.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split")
    census.add_argument("--no-download", action="store_true", help="never try to download the data")
    census.add_argument("--quiet", action="store_true", help="no progress bar")
    census.set_defaults(handler=_census)
    _add_funnel_command(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError) as error:   # bad arguments, missing data: a message
        print(f"minimoe {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
