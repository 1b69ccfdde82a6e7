"""The README as documentation that runs: every command it shows, and every script in scripts/.

Each ``ferrogym ...`` command in the README (fenced code blocks, and inline code anywhere, such as
the list in "The command line"), each ``python -m ferrogym...`` command and each Python code block
runs here as a user would run it: through the installed console script of this environment,
with its default flags (progress bars on), from a scratch folder that stands for the repository
root (``agents/`` is linked into it, so relative paths such as ``agents/hyperparams/ppo.yml``
resolve). :data:`COMMANDS` says how each command is instantiated, and only ever shrinks it:
it fills placeholders (ID, N, DIR, SPEC, IMAGE, ``...``) with real tiny values, replaces the
values of the options in :data:`SHRINKABLE` (budgets, seeds, timesteps, configurations, images,
output folders) and may add only the options in :data:`EXTRA_OPTIONS`; optional ``[parts]`` are
included, and each choice of ``{a,b,c}`` runs once.

The README's set of commands must equal the table's keys: a command added to the README fails
here until the table knows how to run it, so no documented command goes untested.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ferrogym.agents.cli import main
from ferrogym.workflows.images import parse_images

from conftest import REPOSITORY

README = REPOSITORY / "README.md"
SCRIPTS = REPOSITORY / "scripts"
#: The ``ferrogym`` console script of the environment running the tests.
FERROGYM = Path(sys.executable).parent / "ferrogym"

#: Options whose values a test may replace (to shrink the run or write into a temporary folder).
SHRINKABLE = {"--budget", "--seeds", "--timesteps", "--configs", "--images", "--out"}
#: Options a test may add to a command (tiny training images instead of the default 1000).
EXTRA_OPTIONS = {"--images"}
#: Placeholders in the README's commands: capitals (ID, N, DIR, SPEC, ...) and "...".
PLACEHOLDER = re.compile(r"\b[A-Z]+\b|\.\.\.")

TINY = "shape=128x128"
#: Benchmark images: the oracle evaluates all 1,330 configurations of the coarse grid (12 s at
#: 128 x 128, 4 s at 96 x 96; the generator needs at least 80 px).
TINIEST = "shape=96x96"
#: One small synthetic image given as its A sites alone (96 x 96 holds too few of them).
POSITIONS_ONLY = "synthetic:6000-6000,shape=160x160,twin_shear=0.05,input=a_positions"


@dataclass(frozen=True)
class Fill:
    """How one README command runs at a tiny budget.

    ``values`` maps an option of :data:`SHRINKABLE` to its new value, or a placeholder (or an
    example name such as ``mypkg.rewards:score``) to what replaces it; a value may be a dict of
    alternatives (label -> value), each run once. ``extra`` adds options of
    :data:`EXTRA_OPTIONS`. ``outputs`` are files the run must write (relative to its scratch
    folder). Values may hold ``{tmp}`` (the run's scratch folder, also its working directory),
    ``{data}`` (tiny user files: image.npy, a.csv, b.csv, mixed.csv) and ``{policy}`` (the run
    folder of the README's PPO training command).
    """

    name: str
    values: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


#: Two names the README gives for the same command: both must behave the same.
ALIASES = {"python -m ferrogym.agents": "ferrogym"}

BENCHMARK_OUTPUTS = ("summary.md", "summary.csv", "evaluations.jsonl", "settings.json", "best_so_far.png",
                     "best_so_far_seconds.png", "incumbent_ari.png", "best_random.png", "best_grid.png",
                     "best_bayes-gp.png", "best_bayes-tpe.png")

#: Every command of the README (whitespace collapsed) -> how it runs here.
COMMANDS: dict[str, Fill] = {
    "ferrogym demo [--out results/demo] [--budget 20] [--seeds 3]": Fill(
        "demo",
        {"--out": "{tmp}/demo", "--budget": "2", "--seeds": "1"},
        outputs=tuple(f"demo/{name}" for name in ("summary.md", "best_so_far.png", "incumbent_ari.png",
                                                   "best_policy-neighbours.png", "best_static-best-neighbours.png")),
    ),
    "ferrogym train --algo {ppo,a2c,dqn} --env ID --timesteps N [--n-envs K] --seed S --out DIR": Fill(
        "train",
        {"ID": "ferrogym/DomainWalls-v1", "N": "16", "K": "1", "S": "0", "DIR": "{tmp}/run"},
        extra=("--images", f"synthetic:0-1,{TINY}"),
        outputs=("run/run.json", "run/hyperparams.yml", "run/model.zip"),
    ),
    "ferrogym fit-policy --images SPEC --out DIR [--workers 2]": Fill(
        "fit-policy",
        {"SPEC": f"synthetic:5000-5001,{TINIEST}", "DIR": "{tmp}/policy"},
        outputs=("policy/run.json", "policy/table.jsonl", "policy/candidates.json"),
    ),
    "ferrogym benchmark --strategies random,grid,bayes-gp,bayes-tpe,policy:DIR --images SPEC --budget B "
    "--seeds N --out DIR [--workers 2]": Fill(
        "benchmark",
        {"--out": "{tmp}/bench", "DIR": "{policy}", "SPEC": f"synthetic:500-500,{TINIEST}", "B": "2", "N": "1"},
        outputs=(*(f"bench/{name}" for name in BENCHMARK_OUTPUTS), "bench/oracle.jsonl", "bench/best_policy-run.png"),
    ),
    "ferrogym reward-audit --images SPEC --configs N [--rewards combined,mypkg.rewards:score]": Fill(
        "reward-audit",
        {"SPEC": f"synthetic:0-1,{TINY}", "N": "4"},  # mypkg.rewards:score: a module in {data}
        outputs=("results/reward-audit/audit.png",),
    ),
    'ferrogym reward-audit --images "synthetic:300-307,shape=256x256,FAMILY" --configs 100': Fill(
        "reward-audit-family",  # the README's audit of one image family (here four variants in stripes)
        {"--images": f"synthetic:300-300,{TINY},domains=four_stripes", "--configs": "3"},
        outputs=("results/reward-audit/audit.png",),
    ),
    "ferrogym analyze IMAGE --out DIR": Fill(
        "analyze",
        # The README's alternatives to IMAGE: "(or `--positions FILE` ..., or `--a-sites FILE --b-sites FILE`)".
        {"IMAGE": {"image": "{data}/image.npy", "positions": "--positions {data}/mixed.csv",
                   "a-b-sites": "--a-sites {data}/a.csv --b-sites {data}/b.csv"},
         "DIR": "{tmp}/analysis"},
        outputs=("analysis/segmentation.csv", "analysis/summary.json", "analysis/segmentation.png"),
    ),
    "ferrogym analyze scan1.dm4 scan2.dm4 --out DIR": Fill(
        "analyze-batch",  # several images, one table
        {"scan1.dm4": "{data}/image.npy", "scan2.dm4": "{data}/image2.npy", "DIR": "{tmp}/batch"},
        outputs=("batch/summary.csv", "batch/image/summary.json", "batch/image2/columns.png"),
    ),
    "ferrogym analyze FILE --search policy:shipped --budget 5": Fill(
        "analyze-policy",  # the README's check of the shipped policy on a real file
        {"FILE": "{data}/image.npy", "--budget": "2"},
        outputs=("results/analysis/summary.json",),
    ),
    # From "Benchmarks": run from the repository root, with the shipped policy.
    "ferrogym benchmark --strategies policy:shipped,static:best,static:default --images "
    '"synthetic:4160-4191,family=any,shape=256x256|384x384|512x512|768x768|1024x1024" --budget 20 --seeds 1 '
    "--no-oracle --workers 2 --out results/policy-unseen": Fill(
        "benchmark-readme-policy",
        {"--images": f"synthetic:4160-4160,{TINY}", "--budget": "2", "--out": "{tmp}/unseen"},
        outputs=tuple(f"unseen/{name}" for name in ("summary.md", "best_policy-shipped.png", "best_static-best.png",
                                                    "best_static-default.png")),
    ),
    # From "Why not a deep RL agent": the PPO run measured against the policy, and its benchmark.
    "ferrogym train --algo ppo --env ferrogym/DomainWalls-v1 --timesteps 60000 --n-envs 2 --seed 0 --out runs/ppo-v1 "
    '--images "synthetic:10000-29999,family=any,shape=256x256|384x384|512x512|768x768|1024x1024" '
    "--eval-images ''": Fill(
        "train-readme-ppo",
        {"--timesteps": "16", "--out": "{tmp}/run", "--images": f"synthetic:10000-10001,{TINY}"},
        outputs=("run/run.json", "run/model.zip"),
    ),
    "ferrogym benchmark --strategies policy:runs/ppo-v1 --images "
    '"synthetic:4160-4191,family=any,shape=256x256|384x384|512x512|768x768|1024x1024" --budget 20 --seeds 5 '
    "--no-oracle --workers 2 --out results/ppo-v1-unseen": Fill(
        "benchmark-readme-ppo",
        {"runs/ppo-v1": "{policy}", "--images": f"synthetic:4160-4160,{TINY}", "--budget": "2", "--seeds": "1",
         "--out": "{tmp}/ppo"},
        outputs=("ppo/summary.md", "ppo/best_policy-run.png"),
    ),
    "ferrogym benchmark --strategies random,bayes-tpe --images "
    '"synthetic:4160-4191,family=any,shape=256x256|384x384|512x512|768x768|1024x1024" --budget 20 --seeds 10 '
    "--no-oracle --workers 2 --out results/policy-unseen-search": Fill(
        "benchmark-readme-search",
        {"--images": f"synthetic:4160-4160,{TINY}", "--budget": "2", "--seeds": "1", "--out": "{tmp}/search"},
        outputs=("search/summary.md", "search/best_random.png", "search/best_bayes-tpe.png"),
    ),
    "ferrogym benchmark --strategies policy:shipped,static:best --images "
    '"synthetic:6000-6031,family=any,shape=256x256|384x384|512x512|768x768|1024x1024,twin_shear=0:0.07,'
    'input=positions|a_positions" --budget 20 --seeds 1 --no-oracle --workers 2 --out results/positions-unseen': Fill(
        "benchmark-readme-positions",
        {"--images": POSITIONS_ONLY, "--budget": "2", "--out": "{tmp}/positions"},
        outputs=("positions/summary.md", "positions/best_policy-shipped.png", "positions/best_static-best.png"),
    ),
    "ferrogym benchmark --strategies random,bayes-tpe --images "
    '"synthetic:6000-6031,family=any,shape=256x256|384x384|512x512|768x768|1024x1024,twin_shear=0:0.07,'
    'input=positions|a_positions" --budget 20 --seeds 10 --no-oracle --workers 2 --out results/positions-unseen-search': Fill(
        "benchmark-readme-positions-search",
        {"--images": POSITIONS_ONLY, "--budget": "2", "--seeds": "1", "--out": "{tmp}/positions-search"},
        outputs=("positions-search/summary.md", "positions-search/best_random.png"),
    ),
    # From "Scaling out": ADDR is a cluster's address; "local" starts a Ray runtime for the run.
    "ferrogym benchmark --strategies random,grid,bayes-tpe --images \"synthetic:0-49,shape=256x256\" --budget 100 "
    "--seeds 10 --out results/big --backend ray --address ADDR": Fill(
        "benchmark-ray",
        {"--images": f"synthetic:2000-2000,{TINIEST}", "--budget": "2", "--seeds": "1", "--out": "{tmp}/big",
         "ADDR": "local"},
        outputs=(*(f"big/{name}" for name in BENCHMARK_OUTPUTS if name != "best_bayes-gp.png"), "big/oracle.jsonl"),
    ),
    "ferrogym train --algo ppo --env ferrogym/DomainWalls-v1 --timesteps 200000 --n-envs K --out runs/ppo "
    "--backend ray --address ADDR": Fill(
        "train-ray",
        {"--timesteps": "16", "K": "1", "--out": "{tmp}/run", "ADDR": "local"},
        extra=("--images", f"synthetic:0-1,{TINY}"),
        outputs=("run/run.json", "run/hyperparams.yml", "run/model.zip"),
    ),
    "python -m ferrogym.workflows [IMAGE] [--descriptor ...] [--n-clusters ...]": Fill(
        "workflows",
        {"IMAGE": {"synthetic": "", "image": "{data}/image.npy"}, "--descriptor": "displacement",
         "--n-clusters": "4"},
        outputs=("results/workflow",),
    ),
}

#: The ``ferrogym`` subcommands the README documents.
SUBCOMMANDS = {command.split()[1] for command in COMMANDS if command.startswith("ferrogym ")}


# --------------------------------------------------------------------------- the README's text


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    return [(m.group(1).strip(), m.group(2)) for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)]


def _is_command(text: str) -> bool:
    return re.match(r"(ferrogym [a-z]|python -m ferrogym\.)", text) is not None


def readme_commands(text: str) -> set[str]:
    """The commands in ``text``: lines of fenced blocks, and inline code spans outside them."""
    commands = set()
    for _, body in _fenced_blocks(text):
        for line in body.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip().removeprefix("$ "))
            if _is_command(line):
                commands.add(" ".join(line.split()))
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())  # a span may run over lines
        if _is_command(span):
            commands.add(span)
    return commands


def split_references(commands: set[str]) -> tuple[set[str], set[str]]:
    """(commands, subcommands named alone): prose such as "`ferrogym analyze` says so" names a
    command without arguments; it must name one that the table runs, but is not run itself."""
    alone = {c for c in commands if re.fullmatch(r"ferrogym [a-z-]+", c)}
    return commands - alone, {c.split()[1] for c in alone}


def readme_python_blocks() -> list[str]:
    return [body for language, body in _fenced_blocks(README.read_text()) if language == "python"]


def test_every_readme_command_is_run_here():
    commands, named = split_references(readme_commands(README.read_text()))
    assert named <= SUBCOMMANDS, f"the README names commands that do not exist: {named - SUBCOMMANDS}"
    known = set(COMMANDS) | set(ALIASES)
    assert not commands - known, f"README commands this test cannot run yet; add them to COMMANDS: {commands - known}"
    assert not known - commands, f"COMMANDS no longer in the README; remove them: {known - commands}"


def test_the_extraction_finds_inline_fenced_and_multiline_commands():
    text = ("- `ferrogym demo [--out X]`: the `ferrogym` command, `ferrogym.envs`\n"
            "`ferrogym benchmark --images SPEC\n  --budget B`\n"
            "```bash\nferrogym analyze IMAGE  # a comment `ferrogym train`\nmake demo   # `ferrogym demo`\n```\n"
            "```python\nimport ferrogym.envs  # `ferrogym x`\n```\n`ferrogym reward-audit` says")
    commands = readme_commands(text)
    assert commands == {"ferrogym demo [--out X]", "ferrogym benchmark --images SPEC --budget B",
                        "ferrogym analyze IMAGE", "ferrogym reward-audit"}
    assert split_references(commands) == (commands - {"ferrogym reward-audit"}, {"reward-audit"})


# ----------------------------------------------------------------------------- instantiation


@dataclass(frozen=True)
class Invocation:
    """One run of a README command: its id, argument list (with {tmp} / {data} / {policy}) and fill."""

    id: str
    template: str
    argv: tuple[str, ...]
    fill: Fill


def instantiate(template: str, fill: Fill) -> list[Invocation]:
    """The runs of ``template``: [optional parts] kept, each {a,b,c} choice and each alternative
    value once, option values and placeholders replaced as ``fill`` says, ``fill.extra`` added."""
    tokens = shlex.split(template.replace("[", " ").replace("]", " "))
    choices = [m.group(1).split(",") if (m := re.fullmatch(r"\{(.+)\}", t)) else [t] for t in tokens]
    alternatives = {key: value for key, value in fill.values.items() if isinstance(value, Mapping)}
    runs = []
    for chosen in itertools.product(*choices):
        for picked in itertools.product(*(value.items() for value in alternatives.values())):
            values = {**fill.values, **{key: value for key, (_, value) in zip(alternatives, picked)}}
            argv = _fill(list(chosen), values) + list(fill.extra)
            labels = [c for c, options in zip(chosen, choices) if len(options) > 1] + [label for label, _ in picked]
            runs.append(Invocation("-".join([fill.name, *labels]), template, tuple(argv), fill))
    return runs


def _fill(tokens: list[str], values: Mapping[str, str]) -> list[str]:
    argv, index = [], 0
    while index < len(tokens):
        token = tokens[index]
        if token in values and token.startswith("--"):
            assert token in SHRINKABLE or PLACEHOLDER.fullmatch(tokens[index + 1]), f"{token} may not be changed"
            argv += [token, *shlex.split(values[token])]
            index += 2
            continue
        if token in values:
            argv += shlex.split(values[token])
        else:
            names = [name for name in values if not name.startswith("--")]
            if names:
                token = re.sub("|".join(rf"(?<![\w.]){re.escape(name)}(?![\w.])" for name in names),
                               lambda match: values[match.group(0)], token)
            argv.append(token)
        index += 1
    return argv


INVOCATIONS = {run.id: run for template, fill in COMMANDS.items() for run in instantiate(template, fill)}


def test_instantiation_only_fills_placeholders_and_shrinks():
    for run in INVOCATIONS.values():
        argv = list(run.argv)
        assert "--no-progress" not in argv, run.id
        assert not [t for t in argv if PLACEHOLDER.search(t)], f"{run.id}: unfilled placeholder in {argv}"
        added = run.fill.extra[::2]
        assert set(added) <= EXTRA_OPTIONS, f"{run.id} adds {set(added) - EXTRA_OPTIONS}"
    assert INVOCATIONS["train-dqn"].argv[:6] == ("ferrogym", "train", "--algo", "dqn", "--env",
                                                 "ferrogym/DomainWalls-v1")
    assert INVOCATIONS["analyze-a-b-sites"].argv[2:6] == ("--a-sites", "{data}/a.csv", "--b-sites", "{data}/b.csv")
    assert INVOCATIONS["benchmark"].argv[3].endswith("policy:{policy}")
    assert INVOCATIONS["benchmark"].argv[-2:] == ("--workers", "2")
    assert "mypkg.rewards:score" in INVOCATIONS["reward-audit"].argv[-1]


# ---------------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def user_data(tmp_path_factory) -> Path:
    """Tiny user files (an image, A/B/mixed positions) and the README's example reward module."""
    folder = tmp_path_factory.mktemp("user-data")
    workflow = parse_images(f"synthetic:500-500,{TINY}").workflow(0)
    np.save(folder / "image.npy", workflow.image)
    np.save(folder / "image2.npy", parse_images(f"synthetic:501-501,{TINY}").workflow(0).image)
    truth = workflow.truth
    a, b = truth.xy[truth.sublattice == "A"], truth.xy[truth.sublattice == "B"]
    for name, xy in (("a", a), ("b", b), ("mixed", np.vstack([a, b]))):
        np.savetxt(folder / f"{name}.csv", xy, delimiter=",", header="x,y", comments="")
    (folder / "mypkg").mkdir()
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "rewards.py").write_text("from reward_plugins import wall_count as score  # noqa: F401\n")
    return folder


def _environment(user_data: Path) -> dict[str, str]:
    """This environment, with mypkg (in the user data) and tests/reward_plugins importable."""
    paths = [str(user_data), str(REPOSITORY / "tests"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _scratch(tmp_path_factory, name: str) -> Path:
    """A fresh folder standing for the repository root: ``agents/`` is linked into it."""
    folder = tmp_path_factory.mktemp(name)
    (folder / "agents").symlink_to(REPOSITORY / "agents", target_is_directory=True)
    return folder


def _executable(argv: list[str]) -> list[str]:
    if argv[0] == "ferrogym":
        return [str(FERROGYM), *argv[1:]]
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    raise AssertionError(f"unknown program {argv[0]!r}")


def run_in_terminal(argv: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600,
                    stdout: bool = True) -> tuple[int, str]:
    """Run ``argv`` with stderr (and stdout unless ``stdout`` is False) on a pseudo-terminal, so
    progress bars draw as in a user's terminal; returns (exit status, what the terminal got)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=terminal if stdout else subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 1.0)[0]:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(controller)
    try:
        return process.wait(timeout=max(deadline - time.monotonic(), 1)), b"".join(chunks).decode(errors="replace")
    finally:
        process.kill()


def _visible_lines(text: str) -> list[str]:
    """The non-blank lines a terminal shows: what follows the last carriage return of each line
    (progress bars redraw, and clear themselves, with carriage returns)."""
    return [shown for line in text.split("\n") if (shown := line.rstrip("\r").split("\r")[-1].strip())]


class Runner:
    """Runs invocations once each (the PPO training is also the benchmark's ``policy:DIR``)."""

    def __init__(self, tmp_path_factory, user_data: Path):
        self.tmp_path_factory, self.user_data = tmp_path_factory, user_data
        self.done: dict[str, tuple[int, str, Path]] = {}

    def run(self, run_id: str) -> tuple[int, str, Path]:
        """(exit status, terminal output, scratch folder) of the run, made on first request."""
        if run_id not in self.done:
            invocation = INVOCATIONS[run_id]
            markers = {"{data}": str(self.user_data)}
            if "{policy}" in " ".join(invocation.argv):
                markers["{policy}"] = str(self.run_folder("train-ppo") / "run")
            scratch = _scratch(self.tmp_path_factory, run_id)
            markers["{tmp}"] = str(scratch)
            argv = [_replace(token, markers) for token in invocation.argv]
            self.done[run_id] = (*run_in_terminal(_executable(argv), scratch, _environment(self.user_data)), scratch)
        return self.done[run_id]

    def run_folder(self, run_id: str) -> Path:
        returncode, output, scratch = self.run(run_id)
        assert returncode == 0, f"{run_id} failed:\n{output[-3000:]}"
        return scratch


def _replace(token: str, markers: Mapping[str, str]) -> str:
    for marker, value in markers.items():
        token = token.replace(marker, value)
    return token


@pytest.fixture(scope="module")
def runner(tmp_path_factory, user_data) -> Runner:
    return Runner(tmp_path_factory, user_data)


@pytest.mark.slow
@pytest.mark.parametrize("run_id", sorted(INVOCATIONS))
def test_readme_command_runs_as_written(runner, run_id):
    returncode, output, scratch = runner.run(run_id)
    command = " ".join(INVOCATIONS[run_id].argv)
    assert returncode == 0, f"`{command}` exited {returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    for output in INVOCATIONS[run_id].fill.outputs:
        path = scratch / output
        assert path.exists() and (path.is_dir() or path.stat().st_size > 0), f"`{command}` did not write {output}"
    # Figures are named by short strategy names, never by a path.
    assert not [p for p in scratch.rglob("*.png") if "tmp" in p.name or "policies" in p.name]


def test_every_command_takes_help_and_its_alias_is_the_same_command(capsys):
    for subcommand in sorted(SUBCOMMANDS):  # in this process: the console script runs the same main
        with pytest.raises(SystemExit) as exit_info:
            main([subcommand, "--help"])
        assert exit_info.value.code == 0 and f"usage: ferrogym {subcommand}" in capsys.readouterr().out
    for alias, command in ALIASES.items():
        outputs = [subprocess.run(_executable(shlex.split(c)) + ["--help"], capture_output=True, text=True,
                                  timeout=120) for c in (alias, command)]
        assert outputs[0].returncode == outputs[1].returncode == 0
        assert outputs[0].stdout == outputs[1].stdout


#: A bad input per command (progress bars on): it must end with one line and exit status 2.
BAD_INPUT = {
    "demo": ["--budget", "0", "--out", "{tmp}/demo"],
    "train": ["--algo", "ppo", "--timesteps", "16", "--out", "{tmp}/run", "--env-kwarg", "budget=0"],
    "fit-policy": ["--images", f"synthetic:0-1,{TINY},family=lattice", "--out", "{tmp}/p"],
    "benchmark": ["--strategies", "random,annealing", "--images", f"synthetic:0-0,{TINY}", "--out", "{tmp}/b"],
    "reward-audit": ["--images", "{tmp}/missing.npy", "--configs", "2", "--out", "{tmp}/audit"],
    "analyze": ["{tmp}/missing.npy", "--out", "{tmp}/analysis"],
}


@pytest.mark.parametrize("subcommand", sorted(BAD_INPUT))
def test_bad_input_ends_with_one_line_and_status_2(tmp_path, subcommand):
    argv = [str(FERROGYM), subcommand, *(a.replace("{tmp}", str(tmp_path)) for a in BAD_INPUT[subcommand])]
    returncode, stderr = run_in_terminal(argv, tmp_path, timeout=300, stdout=False)
    lines = _visible_lines(stderr)
    assert returncode == 2, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"ferrogym {subcommand}: error: "), stderr[-3000:]


def test_bad_input_covers_every_command():
    assert set(BAD_INPUT) == SUBCOMMANDS


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_block_runs(tmp_path, index):
    code = readme_python_blocks()[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------------- scripts

#: Every script in scripts/ -> (environment variables, arguments) that make it tiny ({tmp}: a
#: scratch folder): a reward table of three 96 x 96 images and one of 160 x 160 given as its A sites.
SCRIPT_RUNS = {
    "fit_shipped_policy.sh": ({"IMAGES": f"synthetic:5000-5002,{TINIEST}",
                               "POSITIONS": "synthetic:5003,shape=160x160,input=a_positions", "OUT": "{tmp}/run",
                               "SHIP_TO": "{tmp}/shipped", "FERROGYM": str(FERROGYM)}, ["--no-progress"]),
    "rllib_bandit.py": ({}, ["--iterations", "1"]),  # needs RLlib; run by test_ray_backend
    # needs abTEM and minutes per image: remakes tests/data/simulated, which tests read; never run here
    "make_simulated_images.py": ({}, []),
}


def test_every_script_is_run_here():
    assert sorted(p.name for p in SCRIPTS.iterdir() if p.is_file()) == sorted(SCRIPT_RUNS)


@pytest.mark.slow
def test_fit_shipped_policy_script_fits_and_ships_a_policy(tmp_path):
    variables, arguments = SCRIPT_RUNS["fit_shipped_policy.sh"]
    variables = {key: value.replace("{tmp}", str(tmp_path)) for key, value in variables.items()}
    returncode, output = run_in_terminal([str(SCRIPTS / "fit_shipped_policy.sh"), *arguments], tmp_path,
                                         {**os.environ, **variables})
    assert returncode == 0 and "Traceback" not in output, output[-3000:]
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == ["candidates.json", "run.json", "table.jsonl"]
    run = json.loads((tmp_path / "shipped" / "run.json").read_text())
    # Every candidate on the three images; on the A sites, only those of the lattice descriptor.
    lattice = sum(c["descriptor"] == "lattice" for c in json.loads((tmp_path / "shipped" / "candidates.json")
                                                                   .read_text())["candidates"])
    assert run["images"] == [variables["IMAGES"], variables["POSITIONS"]]
    assert run["timesteps"] == 3 * 1330 + lattice and 0 < lattice < 1330
    assert set(run["k"]) == set(run["cross_validation"]) == {"image", "positions"}
