"""The ``ferrogym`` command line: demo, train, fit-policy, benchmark, reward-audit, analyze.

Run ``ferrogym COMMAND --help`` for each command's options. Bad input ends with a one-line
message saying what is wrong and what to do (exit status 2), not a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import yaml

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.rewards import DEFAULT_REWARD
from ferrogym.workflows.space import SEARCH_SPACE, SPACES


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = ["ferrogym", *(sys.argv[1:] if argv is None else argv)]
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            args.run(args)
        except InputError as error:
            parser.exit(2, f"ferrogym {args.command}: error: {error}\n")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, as a user reads it (not the source line that raised it)."""
    print(f"warning: {message}", file=sys.stderr if file is None else file, flush=True)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default in ``--help``, except where there is none to show (None, an
    unset flag): those options say in words what happens without them."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferrogym", description=__doc__.splitlines()[0],
                                     formatter_class=DefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_parser_with_defaults)
    _demo_parser(commands)
    _train_parser(commands)
    _fit_policy_parser(commands)
    _benchmark_parser(commands)
    _audit_parser(commands)
    _analyze_parser(commands)
    return parser


def _parser_with_defaults(**kwargs) -> argparse.ArgumentParser:
    """Every command's parser shows its defaults in ``--help``."""
    return argparse.ArgumentParser(**{"formatter_class": DefaultsHelpFormatter, **kwargs})


def _demo_parser(commands) -> None:
    p = commands.add_parser("demo", help="random, Bayesian and policy search on synthetic images, with a report")
    p.add_argument("--out", type=Path, default=Path("results/demo"), help="folder for the report and figures")
    p.add_argument("--budget", type=int, default=20, help="evaluations per search")
    p.add_argument("--seeds", type=int, default=3, help="searches per strategy and image")
    p.add_argument("--images", default=None, help="image SPEC (default: two unseen synthetic images)")
    p.add_argument("--policy", default=None, help="training run of the policy (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_demo)


def _train_parser(commands) -> None:
    p = commands.add_parser("train", help="train a Stable-Baselines3 agent on a ferrogym env")
    p.add_argument("--algo", required=True, choices=["ppo", "a2c", "dqn"])
    p.add_argument("--env", default="ferrogym/DomainWalls-v1", help="env id (also custom ids)")
    p.add_argument("--timesteps", type=int, required=True, help="total environment steps")
    p.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: from the hyperparameters)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run folder (model, checkpoints, logs, run.json)")
    p.add_argument("--hyperparams", type=Path, default=None, help="Zoo-style YAML (default: the shipped one)")
    p.add_argument("--images", default="synthetic:0-999", help="training image SPEC")
    p.add_argument("--eval-images", default="synthetic:1000-1007", help="held-out image SPEC ('' for none)")
    p.add_argument("--eval-freq", type=int, default=2000, help="steps between evaluations on held-out images")
    p.add_argument("--eval-episodes", type=int, default=8)
    p.add_argument("--checkpoint-freq", type=int, default=2000, help="steps between checkpoints")
    p.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="further env keyword argument, e.g. budget=50 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    _backend_arguments(p, "train on one Ray worker")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_train)


def _fit_policy_parser(commands) -> None:
    p = commands.add_parser("fit-policy", help="fit the reward-table policy (and static:best) on training images")
    p.add_argument("--images", required=True, action="append",
                   help="training image SPEC, e.g. synthetic:3000-3063,family=any; repeat it for several sets "
                        "(e.g. one more of input=a_positions, so that positions files get their own neighbours)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder (reward table, run.json); rerun into it to resume the table")
    p.add_argument("--workers", type=int, default=1, help="processes, one image each")
    _space_argument(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_fit_policy)


def _benchmark_parser(commands) -> None:
    p = commands.add_parser("benchmark", help="compare search strategies on the same images and budget")
    p.add_argument("--strategies", default="random,grid,bayes-gp,bayes-tpe",
                   help="comma-separated: random, grid, bayes-gp, bayes-tpe, static:default, static:best, "
                        "static:best:DIR, policy:DIR")
    p.add_argument("--images", required=True, help="synthetic:A-B[,field=value...] or files / globs")
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("results/benchmark"),
                   help="folder for records, summary and figures; rerun into it to resume")
    p.add_argument("--workers", type=int, default=1, help="processes, one image each (local backend)")
    _backend_arguments(p, "one Ray task per search")
    _space_argument(p)
    p.add_argument("--no-oracle", action="store_true", help="skip the exhaustive coarse grid per image")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_benchmark)


def _space_argument(p) -> None:
    p.add_argument("--space", choices=sorted(SPACES), default=SEARCH_SPACE.name,
                   help="what is searched: hand-made descriptors, or the rotation-invariant VAE's settings")


def _backend_arguments(p, ray_does: str) -> None:
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help=f"where to run: this machine, or a Ray cluster ({ray_does}; needs ferrogym[distributed])")
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. HEAD:6379 (default: the cluster started on this machine, "
                        "else a new local one)")


def _audit_parser(commands) -> None:
    p = commands.add_parser("reward-audit", help="how well each reward agrees with the truth (Spearman vs ARI)")
    p.add_argument("--images", required=True, help="synthetic image SPEC (the audit needs truth)")
    p.add_argument("--configs", type=int, default=100, help="random configurations per image")
    p.add_argument("--rewards", default=None, help="comma-separated names or module:function (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/reward-audit"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_audit)


def _analyze_parser(commands) -> None:
    from .analyze import DEFAULT_BUDGET, DEFAULT_SEARCH
    from ferrogym.workflows.figure import DPI, FORMATS

    p = commands.add_parser("analyze", help="analyse your image(s) or positions: columns, domains, walls, phases",
                            description="Find the atom columns, refuse what is not an atomic-resolution image of a "
                                        "perovskite-like crystal, search the best segmentation and write the "
                                        "answer (segmentation.csv, summary.json, figures) to --out. Several "
                                        "images: one folder each under --out and one table, summary.csv.")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE",
                   help="image file(s) (optional with positions); several are analysed in turn")
    p.add_argument("--positions", type=Path, help="x,y[,sublattice] file of mixed or single-sublattice columns")
    p.add_argument("--a-sites", type=Path, help="x,y file of A-site columns (with --b-sites)")
    p.add_argument("--b-sites", type=Path, help="x,y file of B-site columns (with --a-sites)")
    p.add_argument("--search", default=DEFAULT_SEARCH,
                   help="policy:shipped (the policy installed with ferrogym), random, grid, bayes-gp, bayes-tpe, "
                        "static:best, static:default or policy:DIR")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="evaluations of the search")
    p.add_argument("--reward", default=DEFAULT_REWARD, help="reward name or module:function")
    _space_argument(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pixel-size-pm", type=float, default=None,
                   help="pixel size in pm (default: the file's calibration; without one, lengths are in px)")
    p.add_argument("--frame", type=int, default=None, help="the image of a stack to analyse (0-based)")
    p.add_argument("--brighter-sublattice", choices=("A", "B"), default="A",
                   help="which sublattice the brighter columns are: B where B outshines A (SrRuO3: Ru beside Sr)")
    p.add_argument("--region", default=None, metavar="X0,Y0,X1,Y1",
                   help="analyse only the columns in this box (pixels, x = column, y = row), e.g. to leave out "
                        "vacuum or a substrate")
    p.add_argument("--mask", type=Path, default=None,
                   help="analyse only the columns where this mask (.npy, .png, .tif of the image's shape) is nonzero")
    p.add_argument("--format", choices=FORMATS, default="png", help="format of the figures")
    p.add_argument("--dpi", type=int, default=DPI, help="resolution of the figures (of their images in svg, pdf)")
    p.add_argument("--out", type=Path, default=Path("results/analysis"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no line after atom finding")
    p.set_defaults(run=_run_analyze)


def _run_demo(args) -> None:
    from .demo import demo

    demo(args.out, budget=args.budget, seeds=args.seeds, images=args.images, policy=args.policy,
         progress=not args.no_progress)


def _run_train(args) -> None:
    from .training import train

    env_kwargs = {"images": args.images, **_key_values(args.env_kwarg)}
    settings = dict(n_envs=args.n_envs, seed=args.seed, env_kwargs=env_kwargs, eval_images=args.eval_images or None,
                    eval_episodes=args.eval_episodes, eval_freq=args.eval_freq,
                    checkpoint_freq=args.checkpoint_freq, hyperparams=args.hyperparams, resume=args.resume)
    if args.backend == "ray":
        from .distributed import train_on_ray

        out = train_on_ray(args.algo, args.env, args.timesteps, args.out, address=args.address, **settings)
    elif args.address is not None:
        raise InputError("--address names a Ray cluster; use it with --backend ray")
    else:
        out = train(args.algo, args.env, args.timesteps, args.out, progress_bar=not args.no_progress, **settings)
    print(f"trained {args.algo} on {args.env}: {out / 'model.zip'} (settings in {out / 'run.json'})")


def _run_fit_policy(args) -> None:
    from ferrogym.workflows.images import parse_images

    from .neighbours import fit
    from .rewardtable import collect

    table = collect([parse_images(spec) for spec in args.images], args.out, space=args.space, workers=args.workers,
                    progress=not args.no_progress)
    run = fit(table, args.out, args.images[0] if len(args.images) == 1 else args.images, DEFAULT_REWARD)
    print(f"reward table: {len(table.images)} images x {len(table.candidates)} candidates "
          f"({table.evaluations} evaluations, {run['train_seconds']:.0f} s); static:best = {run['static_best']}")
    for kind, k in run["k"].items():
        print(f"{kind} input: chose k = {k} neighbours; cross-validated best reward at budgets 1/3/5/10/20: "
              + " / ".join(f"{v:.3f}" for v in run["cross_validation"][kind][str(k)].values()))
    print(f"policy: {args.out} (use it as policy:{args.out}; its static:best as static:best:{args.out})")


def _run_benchmark(args) -> None:
    from .benchmark import run_benchmark

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    run_benchmark(strategies, args.images, args.budget, args.seeds, args.out, oracle=not args.no_oracle,
                  space=args.space, workers=args.workers, backend=args.backend, address=args.address, progress=not args.no_progress)
    print((args.out / "summary.md").read_text())
    print(f"records: {args.out / 'evaluations.jsonl'}; figures and summary.csv in {args.out}")


def _run_audit(args) -> None:
    from .audit import audit, summarise_audit, write_audit

    rewards = None
    if args.rewards:
        rewards = {name.strip(): name.strip() for name in args.rewards.split(",") if name.strip()}
    with _ticker(disable=args.no_progress) as tick:
        rows = audit(args.images, args.configs, rewards, seed=args.seed, progress=tick)
    paths = write_audit(rows, summarise_audit(rows), args.out)
    print(paths[1].read_text() if len(paths) > 1 else "")
    print("written: " + ", ".join(str(p) for p in paths))


def _run_analyze(args) -> None:
    from ferrogym.workflows.region import parse_box

    if args.region and args.mask:
        raise InputError("give either --region or --mask, not both")
    if len(args.images) > 1 and (args.positions or args.a_sites or args.b_sites):
        raise InputError("positions go with one image; analyse several images without --positions/--a-sites/--b-sites")
    settings = dict(search=args.search, budget=args.budget, seed=args.seed, reward=args.reward, space=args.space,
                    pixel_size_pm=args.pixel_size_pm, frame=args.frame, brighter_sublattice=args.brighter_sublattice,
                    region=parse_box(args.region) if args.region else args.mask, progress=not args.no_progress,
                    command_line=args.command_line)
    figures = dict(format=args.format, dpi=args.dpi)
    if len(args.images) <= 1:
        image = args.images[0] if args.images else None
        _analyze_one(image, args.out, settings, figures, positions=args.positions, a_sites=args.a_sites,
                     b_sites=args.b_sites)
        return
    _analyze_batch(args.images, args.out, settings, figures)


def _analyze_one(image, out: Path, settings: dict, figures: dict, **positions):
    """Analyse one input, write its outputs into ``out`` and say what was found and written."""
    from .analyze import analyze

    result = analyze(image, **positions, **settings)
    written = result.save(out, **figures)
    best = result.search.best
    print(f"best reward {best.reward:.3f} with {best.config_px}")
    print(result.verdict)
    displacement = result.summary()["answer"]["b_displacement"]
    a = result.calibration.length_text(result.columns["lattice_constant"])
    if displacement:
        print(f"a = {a}; B-site displacement: median {displacement['median_magnitude']} {displacement['unit']} "
              f"over {displacement['sites']} B sites")
    else:
        why = "no B sites" if not result.columns["B"] else "no B site has a complete cage"
        print(f"a = {a}; no B-site displacements ({why})")
    print("written: " + ", ".join(str(p) for p in written.values()))
    return result


def _analyze_batch(images: list[Path], out: Path, settings: dict, figures: dict) -> None:
    """Analyse each image into its own folder under ``out`` and write one table of them all;
    an image that is refused is a row saying why, and the command ends with status 2."""
    import time

    from .analyze import batch_row, write_batch_table

    rows, folders = [], _batch_folders(images, out)
    for index, (image, folder) in enumerate(zip(images, folders), start=1):
        print(f"[{index}/{len(images)}] {image}", flush=True)
        start = time.perf_counter()
        try:
            result, error = _analyze_one(image, folder, settings, figures), None
        except InputError as refusal:
            result, error = None, str(refusal)
            print(f"refused: {error}", file=sys.stderr, flush=True)
        rows.append(batch_row(image, result, folder, time.perf_counter() - start, error))
    table = write_batch_table(rows, out / "summary.csv")
    refused = sum(row["status"] == "refused" for row in rows)
    print(f"batch of {len(images)} images: {len(images) - refused} analysed, {refused} refused; table: {table}")
    if refused:
        raise InputError(f"{refused} of {len(images)} images were refused (reasons in {table})")


def _batch_folders(images: list[Path], out: Path) -> list[Path]:
    """One output folder per image, named by its file name without suffix (parents added where
    two images share a name)."""
    names = [image.stem for image in images]
    for depth in range(1, max(len(image.parts) for image in images) + 1):
        if len(set(names)) == len(names):
            break
        names = ["_".join([*image.parent.parts[-depth:], image.stem]).replace("/", "_") for image in images]
    return [out / name for name in names]


def _key_values(pairs: list[str]) -> dict:
    """KEY=VALUE strings as a dict, values read as YAML scalars (50 -> int, raw -> str)."""
    result = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise InputError(f"--env-kwarg {pair!r} is not KEY=VALUE")
        result[key] = yaml.safe_load(value)
    return result


@contextmanager
def _ticker(disable: bool = False):
    """A progress bar of audited images as a callable (None when disabled); on an error the bar
    is cleared, so bad input still ends with the one-line message alone."""
    from tqdm.auto import tqdm

    if disable:
        yield None
        return
    bar = tqdm(desc="images audited", unit="image")
    try:
        yield bar.update
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
