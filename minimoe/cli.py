"""The ``minimoe`` command: ``gradcheck``, ``compare`` and ``experts``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import experiments, selfcheck


def _plots():
    from . import plots  # matplotlib only when a plot is asked for
    return plots


def _gradcheck(args) -> int:
    started = time.perf_counter()
    rows = selfcheck.run(args.seed)
    print(selfcheck.format_rows(rows))
    failed = [row for row in rows if not row[2] < row[3]]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} gradients within their limit "
          f"(float64, central differences, step 1e-6) in {time.perf_counter() - started:.1f}s")
    return 1 if failed else 0


def _settings(args) -> experiments.Settings:
    base = experiments.FULL if args.full else experiments.QUICK
    # --lr sets one learning rate for every model, replacing the per-model defaults.
    lr_overrides = {"lr": args.lr, "model_lr": ()} if args.lr is not None else {}
    return experiments.with_overrides(base, epochs=args.epochs, n_train=args.n_train, seed=args.seed,
                                      **lr_overrides)


def _describe(settings: experiments.Settings) -> str:
    return (f"{settings.n_train} training / {settings.n_test} test rows, D={settings.n_features}, "
            f"{settings.epochs} epochs, batch {settings.batch_size}, Adam lr {settings.lr:g}"
            + "".join(f" ({model}: {lr:g})" for model, lr in settings.model_lr) + f", seed {settings.seed}")


def _finish(results, args, plot, key: str) -> None:
    print(experiments.format_table(results, key=key))
    if args.save_json:
        with open(args.save_json, "w") as stream:
            json.dump(experiments.results_as_dicts(results), stream, indent=1)
        print(f"results written to {args.save_json}")
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")


def _compare(args) -> int:
    settings = _settings(args)
    correlations = args.correlations or ([args.correlation] if args.correlation is not None else
                                         [1.0, 0.9, 0.5, 0.0, -0.5])
    runs = args.runs if args.runs is not None else (20 if args.full else 5)
    print(f"Shared-Bottom, OMoE, MMoE on the synthetic benchmark at correlations {correlations}, {runs} run(s) "
          f"each: {_describe(settings)}", flush=True)
    started = time.perf_counter()
    results = experiments.relatedness(correlations, runs, settings=settings, jobs=args.jobs,
                                      progress=not args.quiet)
    print(f"done in {time.perf_counter() - started:.0f}s\n")
    _finish(results, args, lambda r, p: _plots().plot_relatedness(r, p), "correlation")
    return 0


def _experts(args) -> int:
    settings = _settings(args)
    runs = args.runs if args.runs is not None else (10 if args.full else 3)
    print(f"OMoE and MMoE with {args.experts} experts at correlation {args.correlation}, {runs} run(s) each: "
          f"{_describe(settings)}", flush=True)
    started = time.perf_counter()
    results = experiments.experts_sweep(args.experts, args.correlation, runs, settings=settings,
                                        jobs=args.jobs, progress=not args.quiet)
    print(f"done in {time.perf_counter() - started:.0f}s\n")
    _finish(results, args, lambda r, p: _plots().plot_experts(r, p), "n_experts")
    return 0


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="fresh data sets per cell (compare: 5, --full 20; "
                        "experts: 3, --full 10)")
    parser.add_argument("--epochs", type=int, help="training epochs per run")
    parser.add_argument("--lr", type=float, help="one Adam learning rate for every model "
                        "(default: 1e-2, and 1e-3 for Shared-Bottom)")
    parser.add_argument("--n-train", type=int, help="training rows per run")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--seed", type=int, help="base seed; every run's seeds derive from it")
    parser.add_argument("--full", action="store_true", help="the paper-sized study (minutes, not seconds)")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot (needs matplotlib)")
    parser.add_argument("--save-json", metavar="FILE.json", help="save every run's result")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimoe", description="Multi-task learning with Shared-Bottom, "
                                     "OMoE and MMoE, from first principles in NumPy.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("gradcheck", help="check every backward pass against numerical gradients")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(handler=_gradcheck)
    compare = commands.add_parser("compare", help="train and compare the three models on synthetic data")
    compare.add_argument("--correlation", type=float, help="one task correlation in [-1, 1]")
    compare.add_argument("--correlations", type=float, nargs="+", help="several correlations")
    _add_study_options(compare)
    compare.set_defaults(handler=_compare)
    sweep = commands.add_parser("experts", help="OMoE and MMoE test loss versus the number of experts")
    sweep.add_argument("--experts", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    sweep.add_argument("--correlation", type=float, default=0.5)
    _add_study_options(sweep)
    sweep.set_defaults(handler=_experts)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError) as error:     # bad arguments: a message, not a traceback
        print(f"minimoe {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
