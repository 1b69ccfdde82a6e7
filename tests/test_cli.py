"""The ``ferrogym`` command end to end at tiny budgets: train, benchmark (with resume after a
kill), reward-audit, analyze and demo."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ferrogym.agents import benchmark as benchmark_module
from ferrogym.agents.cli import main
from ferrogym.agents.policy import PolicySearcher
from ferrogym.agents.report import load_records
from ferrogym.workflows.answer import CSV_COLUMNS
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.space import SEARCH_SPACE

#: Tiny images (about 6 x 6 unit cells) keep every command to seconds.
TINY = "shape=160x160"
TRAIN_IMAGES = f"synthetic:0-1,{TINY}"
TEST_IMAGES = f"synthetic:500-501,{TINY}"
TINY_PPO = {"policy": "MlpPolicy", "n_envs": 1, "n_steps": 16, "batch_size": 16, "n_epochs": 1}


def hyperparams_file(folder: Path, algo: str, entry: dict) -> Path:
    path = folder / f"{algo}.yml"
    path.write_text(yaml.safe_dump({"ferrogym/DomainWalls-v1": entry, "ferrogym/DomainWallsBandit-v1": entry}))
    return path


def train_args(out: Path, hyperparams: Path, timesteps: int, algo: str = "ppo", *extra: str) -> list[str]:
    return ["train", "--algo", algo, "--timesteps", str(timesteps), "--out", str(out), "--images", TRAIN_IMAGES,
            "--eval-images", f"synthetic:900-900,{TINY}", "--eval-freq", "16", "--eval-episodes", "1",
            "--checkpoint-freq", "16", "--hyperparams", str(hyperparams), "--env-kwarg", "budget=4",
            "--no-progress", *extra]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A PPO run of 32 steps on the search env (training images: seeds 0-1)."""
    folder = tmp_path_factory.mktemp("run")
    main(train_args(folder / "ppo", hyperparams_file(folder, "ppo", TINY_PPO), 32))
    return folder / "ppo"


def run_cli(*args: str, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrogym.agents", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# --- train ---------------------------------------------------------------------------------------


def test_train_keeps_everything_needed_to_reproduce_and_reuse(trained_run):
    run = json.loads((trained_run / "run.json").read_text())
    assert run["algo"] == "ppo" and run["env_id"] == "ferrogym/DomainWalls-v1"
    assert run["env_kwargs"] == {"images": TRAIN_IMAGES, "budget": 4}
    assert run["reward"] == "order"  # the default, named, so a later change of default cannot hide
    assert run["timesteps"] == 32 and run["train_seconds"] > 0 and run["seed"] == 0
    assert yaml.safe_load((trained_run / "hyperparams.yml").read_text()) == TINY_PPO
    assert (trained_run / "model.zip").is_file() and (trained_run / "best" / "best_model.zip").is_file()
    assert sorted(p.name for p in (trained_run / "checkpoints").iterdir()) == ["model_16_steps.zip", "model_32_steps.zip"]


def test_tensorboard_logs_reward_components_and_truth(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (trained_run / "tb").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"rollout/ep_rew_mean", "ferrogym/ari", "ferrogym/continuity", "ferrogym/straightness",
            "eval/mean_reward"} <= tags


def test_resume_continues_from_the_newest_checkpoint(tmp_path):
    hyperparams = hyperparams_file(tmp_path, "ppo", TINY_PPO)
    main(train_args(tmp_path / "run", hyperparams, 16))
    first = json.loads((tmp_path / "run" / "run.json").read_text())
    main(train_args(tmp_path / "run", hyperparams, 48, "ppo", "--resume"))
    resumed = json.loads((tmp_path / "run" / "run.json").read_text())
    assert resumed["timesteps"] == 48 and resumed["train_seconds"] > first["train_seconds"] > 0
    assert (tmp_path / "run" / "checkpoints" / "model_48_steps.zip").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(tmp_path / "run", hyperparams, 64, "ppo", "--resume", "--seed", "3"))
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):  # another reward is another run
        main(train_args(tmp_path / "run", hyperparams, 64, "ppo", "--resume", "--env-kwarg", "reward=combined"))
    with pytest.raises(SystemExit):
        main(train_args(tmp_path / "run", hyperparams, 64))  # an existing run needs --resume


@pytest.mark.slow
def test_the_console_command_trains_in_subprocess_envs(tmp_path):
    """Subprocess envs start without this process's registry; the built-in ids must still resolve."""
    command = Path(sys.executable).with_name("ferrogym")
    args = train_args(tmp_path / "run", hyperparams_file(tmp_path, "ppo", {**TINY_PPO, "n_envs": 2}), 32)
    result = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["n_envs"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("algo, entry", [
    ("a2c", {"policy": "MlpPolicy", "n_envs": 1, "n_steps": 4}),
    ("dqn", {"policy": "MlpPolicy", "n_envs": 1, "learning_starts": 8, "buffer_size": 100, "batch_size": 8,
             "train_freq": 4, "target_update_interval": 8}),
])
def test_a2c_and_dqn_train_and_search(tmp_path, algo, entry):
    main(train_args(tmp_path / algo, hyperparams_file(tmp_path, algo, entry), 16, algo))
    run = json.loads((tmp_path / algo / "run.json").read_text())
    assert run["discrete"] == (algo == "dqn")
    workflow = parse_images(TEST_IMAGES).workflow(0)
    searcher = PolicySearcher(tmp_path / algo, workflow, budget=5, seed=0)
    asked = []
    for _ in range(5):
        config = searcher.ask()
        searcher.tell(config, workflow.evaluate(config).reward)
        asked.append(tuple(config.values()))
    assert len(set(asked)) == 5


# --- the policy as a searcher --------------------------------------------------------------------


def test_policy_searcher_proposes_distinct_canonical_configurations_reproducibly(trained_run):
    workflow = parse_images(TEST_IMAGES).workflow(0)

    def search(seed):
        searcher = PolicySearcher(trained_run, workflow, budget=8, seed=seed)
        asked = []
        for _ in range(8):
            config = searcher.ask()
            assert SEARCH_SPACE.canonical(config) == config
            evaluation = workflow.evaluate(config)
            searcher.tell(config, evaluation.reward, evaluation)
            asked.append(tuple(config.values()))
        return asked

    first = search(0)
    assert first == search(0) and len(set(first)) == len(first)
    assert first != search(1)


# --- benchmark -----------------------------------------------------------------------------------


def comparable(records):
    """Records without timings, in a fixed order."""
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    return sorted(rows, key=lambda r: (r["protocol"], r["strategy"], r["image"], r["seed"], r["step"]))


def test_benchmark_writes_records_summary_and_figures(tmp_path, trained_run, monkeypatch, capsys):
    # An oracle over five configurations keeps the test fast; the real one is the coarse grid.
    monkeypatch.setattr(benchmark_module, "coarse_grid", lambda space: [space.sample(np.random.default_rng(i))
                                                                         for i in range(5)])
    out = tmp_path / "bench"
    main(["benchmark", "--strategies", f"random,bayes-tpe,policy:{trained_run}", "--images", TEST_IMAGES,
          "--budget", "6", "--seeds", "2", "--out", str(out), "--no-progress"])
    records = load_records(out / "evaluations.jsonl")
    assert len(records) == 3 * 2 * 2 * 6
    assert {r["protocol"] for r in records if r["strategy"].startswith("policy:")} == {"amortised"}
    assert {"config", "config_px", "reward", "components", "metrics", "seconds", "reason"} <= set(records[0])
    oracle = [json.loads(line) for line in (out / "oracle.jsonl").read_text().splitlines()]
    assert [o["evaluations"] for o in oracle] == [5, 5]
    summary = list(csv.DictReader(open(out / "summary.csv")))
    policy_rows = [r for r in summary if r["strategy"].startswith("policy:")]
    assert policy_rows and all(r["training_timesteps"] == "32" for r in policy_rows)
    for name in ("summary.md", "best_so_far.png", "best_so_far_seconds.png", "incumbent_ari.png", "best_random.png"):
        assert (out / name).stat().st_size > 0
    assert "Protocol: amortised" in capsys.readouterr().out


def test_benchmark_rejects_a_policy_tested_on_its_training_images(trained_run, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--strategies", f"policy:{trained_run}", "--images", f"synthetic:1-3,{TINY}",
              "--budget", "2", "--seeds", "1", "--out", str(tmp_path), "--no-oracle", "--no-progress"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_killed_benchmark_resumes_without_losing_or_repeating_evaluations(tmp_path):
    args = ["benchmark", "--strategies", "random,bayes-tpe,grid", "--images", TEST_IMAGES, "--budget", "8",
            "--seeds", "3", "--no-oracle", "--no-progress"]
    expected = 3 * 2 * 3 * 8
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "ferrogym.agents", *args, "--out", str(interrupted)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records_path = interrupted / "evaluations.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        lines = records_path.read_text().count("\n") if records_path.exists() else 0
        if lines >= expected // 3:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = records_path.read_text().count("\n")
    assert 0 < killed_at < expected, "the benchmark was not interrupted mid-run"

    assert run_cli(*args, "--out", str(interrupted)).returncode == 0
    clean = tmp_path / "clean"
    assert run_cli(*args, "--out", str(clean)).returncode == 0
    resumed = load_records(records_path)
    assert len(resumed) == expected
    assert comparable(resumed) == comparable(load_records(clean / "evaluations.jsonl"))


def test_benchmark_refuses_to_mix_settings_in_one_folder(tmp_path):
    base = ["benchmark", "--strategies", "random", "--images", TEST_IMAGES, "--seeds", "1", "--out", str(tmp_path),
            "--no-oracle", "--no-progress"]
    main([*base, "--budget", "2"])
    with pytest.raises(SystemExit):
        main([*base, "--budget", "3"])


def test_benchmark_searches_the_vae_space_and_keeps_it_on_resume(tmp_path):
    base = ["benchmark", "--strategies", "random", "--images", f"synthetic:500,{TINY}", "--seeds", "1",
            "--budget", "2", "--out", str(tmp_path), "--no-oracle", "--no-progress"]
    main([*base, "--space", "vae"])
    records = load_records(tmp_path / "evaluations.jsonl")
    assert len(records) == 2 and all(r["config"]["descriptor"] == "vae" for r in records)
    with pytest.raises(SystemExit):
        main(base)  # the folder holds a VAE benchmark


def test_a_policy_searches_only_the_space_it_was_trained_on(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--strategies", f"policy:{trained_run}", "--images", TEST_IMAGES, "--space", "vae",
              "--budget", "2", "--seeds", "1", "--out", str(tmp_path), "--no-oracle", "--no-progress"])
    assert exit_info.value.code == 2
    assert "trained on the 'descriptors' space; this search is over 'vae'" in capsys.readouterr().err


# --- reward audit --------------------------------------------------------------------------------


def test_reward_audit_reports_each_reward(tmp_path, capsys):
    main(["reward-audit", "--images", f"synthetic:0-1,{TINY}", "--configs", "12", "--out", str(tmp_path),
          "--rewards", "combined,continuity,reward_plugins:wall_count", "--no-progress"])
    rows = list(csv.DictReader(open(tmp_path / "audit.csv")))
    assert {r["reward"] for r in rows} == {"combined", "continuity", "reward_plugins:wall_count"}
    assert (tmp_path / "audit.png").stat().st_size > 0
    assert "combined" in capsys.readouterr().out


# --- analyze -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """An image and the positions of its columns, as a user would have them."""
    folder = tmp_path_factory.mktemp("data")
    workflow = parse_images(TEST_IMAGES).workflow(0)
    np.save(folder / "image.npy", workflow.image)
    truth = workflow.truth
    a, b = truth.xy[truth.sublattice == "A"], truth.xy[truth.sublattice == "B"]
    np.savetxt(folder / "a.csv", a, delimiter=",", header="x,y", comments="")
    np.savetxt(folder / "b.csv", b, delimiter=",", header="x,y", comments="")
    np.savetxt(folder / "mixed.csv", np.vstack([a, b]), delimiter=",", header="x,y", comments="")
    return folder, len(truth.xy)


@pytest.mark.parametrize("inputs", [["image.npy"], ["--a-sites", "a.csv", "--b-sites", "b.csv"],
                                    ["--positions", "mixed.csv"]])
def test_analyze_writes_labels_per_atom_and_the_chosen_configuration(tmp_path, user_files, inputs):
    folder, n_atoms = user_files
    args = [str(folder / i) if i.endswith((".npy", ".csv")) else i for i in inputs]
    main(["analyze", *args, "--search", "bayes-tpe", "--budget", "5", "--out", str(tmp_path), "--no-progress"])
    rows = list(csv.DictReader(open(tmp_path / "segmentation.csv")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert abs(len(rows) - n_atoms) <= 0.05 * n_atoms
    assert {r["sublattice"] for r in rows} <= {"A", "B"} and min(int(r["label"]) for r in rows) >= -1
    if "--a-sites" in inputs:
        assert {r["sublattice"] for r in rows} == {"A", "B"} and len(rows) == n_atoms
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"answer", "search", "run"}
    assert len(summary["search"]["evaluations"]) == 5 and 0 <= summary["search"]["best"]["reward"] <= 1
    assert summary["run"]["command_line"].startswith("ferrogym analyze ")
    assert (tmp_path / "segmentation.png").stat().st_size > 0
    assert (tmp_path / "columns.png").exists() == (inputs == ["image.npy"])


def test_analyze_explains_bad_input(tmp_path, user_files, capsys):
    folder, _ = user_files
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--positions", str(folder / "mixed.csv"), "--a-sites", str(folder / "a.csv"),
              "--b-sites", str(folder / "b.csv"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", "--a-sites", str(folder / "a.csv"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["analyze", str(folder / "image.npy"), "--search", "simulated-annealing", "--out", str(tmp_path)])


def test_analyze_finds_the_shipped_policy_from_any_folder(tmp_path, user_files):
    folder, _ = user_files
    result = run_cli("analyze", str(folder / "image.npy"), "--search", "policy:shipped", "--budget", "2",
                     "--out", str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["search"]["strategy"] == "policy:shipped" and len(summary["search"]["evaluations"]) == 2


def test_analyze_help_shows_its_defaults(capsys):
    from ferrogym.agents.analyze import DEFAULT_BUDGET, DEFAULT_SEARCH

    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_SEARCH})" in text and f"evaluations of the search (default: {DEFAULT_BUDGET})" in text
    assert "--frame" in text and "--region" in text and "--mask" in text and "(default: png)" in text


def test_analyze_says_what_it_found_before_searching(tmp_path, user_files, capsys):
    folder, _ = user_files
    main(["analyze", str(folder / "image.npy"), "--budget", "1", "--pixel-size-pm", "16", "--out", str(tmp_path)])
    first, *rest = capsys.readouterr().out.splitlines()
    assert first.startswith("found ") and " pm (" in first and "B/A peak" in first
    assert any("B-site displacement: median" in line and " pm over " in line for line in rest)


def test_analyze_picks_a_frame_of_a_stack(tmp_path, user_files, capsys):
    folder, _ = user_files
    image = np.load(folder / "image.npy")
    np.save(tmp_path / "stack.npy", np.stack([image[::-1], image]))
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(tmp_path / "stack.npy"), "--out", str(tmp_path / "a"), "--no-progress"])
    assert exit_info.value.code == 2 and "--frame k" in capsys.readouterr().err
    main(["analyze", str(tmp_path / "stack.npy"), "--frame", "1", "--budget", "1", "--out", str(tmp_path / "b"),
          "--no-progress"])
    run = json.loads((tmp_path / "b" / "summary.json").read_text())["run"]
    assert run["input"]["image_shape"] == list(image.shape)


def test_analyze_leaves_out_what_is_outside_the_region(tmp_path, user_files):
    folder, _ = user_files
    main(["analyze", str(folder / "image.npy"), "--region", "0,0,159,79", "--budget", "1", "--format", "pdf",
          "--out", str(tmp_path), "--no-progress"])
    rows = list(csv.DictReader(open(tmp_path / "segmentation.csv")))
    assert max(float(r["y_px"]) for r in rows) <= 79.5
    assert (tmp_path / "segmentation.pdf").read_bytes()[:4] == b"%PDF"


def test_analyze_batches_images_into_one_table_and_reports_refusals(tmp_path, user_files, capsys):
    folder, _ = user_files
    noise = np.random.default_rng(0).normal(size=(160, 160))
    np.save(tmp_path / "noise.npy", noise)
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(folder / "image.npy"), str(tmp_path / "noise.npy"), "--budget", "1",
              "--out", str(tmp_path / "batch"), "--no-progress"])
    assert exit_info.value.code == 2 and "1 of 2 images were refused" in capsys.readouterr().err
    rows = list(csv.DictReader(open(tmp_path / "batch" / "summary.csv")))
    assert [r["status"] for r in rows] == ["analysed", "refused"]
    assert (tmp_path / "batch" / "image" / "summary.json").exists() and "noise.npy" in rows[1]["message"]


# --- demo ----------------------------------------------------------------------------------------


def test_demo_prints_a_table_of_budgets_and_writes_figures(tmp_path, capsys):
    main(["demo", "--out", str(tmp_path), "--budget", "3", "--seeds", "1", "--images", f"synthetic:2000-2000,{TINY}",
          "--no-progress"])
    out = capsys.readouterr().out
    assert "@1" in out and "@3" in out
    for strategy in ("policy", "static:best", "random", "bayes-tpe"):
        assert f"\n{strategy} " in out
    assert (tmp_path / "summary.md").is_file()
    # Figures are named by the strategy's short name (the policy by its run folder), never a path.
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted([
        "best_so_far.png", "best_so_far_seconds.png", "incumbent_ari.png", "best_random.png", "best_bayes-tpe.png",
        "best_static-best-neighbours.png", "best_policy-neighbours.png"])


def test_demo_takes_a_stable_baselines3_policy(tmp_path, trained_run, capsys):
    main(["demo", "--out", str(tmp_path), "--budget", "2", "--seeds", "1", "--images", f"synthetic:2000-2000,{TINY}",
          "--policy", str(trained_run), "--no-progress"])
    assert (tmp_path / f"best_policy-{trained_run.name}.png").is_file() and (tmp_path / "best_static-best.png").is_file()


def test_the_shipped_policy_is_a_finished_run_trained_on_other_images():
    from ferrogym.agents.demo import DEMO_IMAGES
    from ferrogym.agents.neighbours import load_policy, training_images
    from ferrogym.agents.policy import load_run, shipped_policy

    run = load_run(shipped_policy())
    trained, demo_images = training_images(run), parse_images(DEMO_IMAGES)
    assert all(demo_images.last < images.first for images in trained)
    assert run["algo"] == "neighbours" and run["reward"] == "order" and run["space"] == "descriptors"
    assert {images.input(i) for images in trained for i in range(len(images))} == {"image", "positions", "a_positions"}
    # Every candidate was evaluated where the input could give its descriptor, and only there.
    _, table = load_policy(shipped_policy())
    assert run["timesteps"] == table.evaluations == np.isfinite(table.rewards).sum()
    descriptors = np.array([c["descriptor"] for c in table.candidates])
    can_give = {"image": {"patch", "displacement", "lattice", "patch+displacement"},
                "positions": {"displacement", "lattice"}, "a_positions": {"lattice"}}
    for name, row in zip(table.images, table.rewards):
        given = can_give[name.rsplit("/", 1)[1] if "/" in name else "image"]
        assert (np.isfinite(row) == np.isin(descriptors, list(given))).all(), name


@pytest.mark.slow
def test_one_and_two_workers_record_the_same_evaluations(tmp_path):
    """Same seeds, same records, whatever the number of worker processes (timings aside)."""
    def records(workers):
        out = tmp_path / f"w{workers}"
        benchmark_module.run_benchmark(["random", "bayes-tpe", "static:default"], f"synthetic:500-501,{TINY}", 3, 2,
                                       out, oracle=False, workers=workers, progress=False)
        lines = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
        return sorted((json.dumps({k: v for k, v in r.items() if k != "seconds"}, sort_keys=True) for r in lines))

    one, two = records(1), records(2)
    assert len(one) == 2 * 3 * 2 * 3 and one == two
