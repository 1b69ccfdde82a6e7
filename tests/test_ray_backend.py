"""ferrogym on Ray (``--backend ray``): the same records as the local backend, resume after a killed
driver, atoms once per node, training on a worker, envs for RLlib, and a one-line message without
Ray. The tests that need Ray share one local runtime of 2 CPUs and skip when Ray is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferrogym.agents.benchmark import run_benchmark
from ferrogym.agents.cli import main
from ferrogym.envs import register_reward_env

from conftest import REPOSITORY
from test_readme_commands import SCRIPT_RUNS

NO_RAY = "Ray is not installed; pip install 'ferrogym[distributed]' to run these tests"
#: One small benchmark run by both backends: 2 strategies x 2 images x 3 seeds x 10 evaluations (about
#: 3 s of evaluations, long enough to kill its driver mid-run).
ARGS = ["--strategies", "random,bayes-tpe", "--images", "synthetic:0-1,shape=128x128", "--budget", "10",
        "--seeds", "3", "--no-oracle", "--no-progress"]
EXPECTED = 2 * 2 * 3 * 10
#: The oracle's coarse grid on one image of the smallest size the generator makes (about 4 s).
ORACLE_IMAGES = "synthetic:500-500,shape=96x96"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray runtime of 2 CPUs, no dashboard, for the module; yields its address."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def load_records(path: Path) -> dict[tuple, dict]:
    """(strategy, image, seed, step) -> record without its timing; fails on a repeated evaluation."""
    records = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("seconds")
        key = (record["strategy"], record["image"], record["seed"], record["step"])
        assert key not in records, f"evaluation {key} recorded twice"
        records[key] = record
    return records


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrogym.agents", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def local_records(tmp_path_factory) -> dict[tuple, dict]:
    out = tmp_path_factory.mktemp("local")
    assert main(["benchmark", *ARGS, "--out", str(out)]) == 0
    return load_records(out / "evaluations.jsonl")


@pytest.mark.slow
def test_ray_backend_records_equal_the_local_backends(cluster, local_records, tmp_path):
    assert main(["benchmark", *ARGS, "--out", str(tmp_path), "--backend", "ray"]) == 0
    records = load_records(tmp_path / "evaluations.jsonl")
    assert len(records) == EXPECTED
    assert records == local_records


@pytest.mark.slow
def test_a_killed_ray_driver_resumes_without_losing_or_repeating_evaluations(cluster, local_records, tmp_path):
    command = [sys.executable, "-m", "ferrogym.agents", "benchmark", *ARGS, "--out", str(tmp_path),
               "--backend", "ray", "--address", cluster]
    records_path = tmp_path / "evaluations.jsonl"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if records_path.exists() and records_path.read_bytes().count(b"\n") >= EXPECTED // 10:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = records_path.read_bytes().count(b"\n")
    assert 0 < killed_at < EXPECTED, "the benchmark was not interrupted mid-run"

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_records(records_path) == local_records


@pytest.mark.slow
def test_the_oracle_runs_on_ray_as_locally(cluster, tmp_path):
    args = dict(strategies=["random"], images=ORACLE_IMAGES, budget=1, seeds=1, progress=False)
    run_benchmark(out=tmp_path / "local", **args)
    run_benchmark(out=tmp_path / "ray", backend="ray", **args)
    oracles = [json.loads((tmp_path / side / "oracle.jsonl").read_text()) for side in ("local", "ray")]
    assert oracles[0] == oracles[1] and oracles[0]["evaluations"] > 1000


def test_atoms_are_found_once_per_node_and_shared_by_its_tasks(cluster):
    import ray

    from ferrogym.agents.benchmark import Benchmark
    from ferrogym.agents.distributed import NodeAtoms, _atoms_name, _node_workflow
    from ferrogym.workflows.images import parse_images

    benchmark = Benchmark(("random",), parse_images("synthetic:0-1,shape=128x128"), 4, 1, Path("unused"))
    node = ray.get_runtime_context().get_node_id()
    atoms = ray.remote(NodeAtoms).options(name=_atoms_name("test", node), num_cpus=0).remote(benchmark)
    atom_count = ray.remote(lambda index: len(_node_workflow(ray, "test", benchmark, index).lattice.xy))
    counts = ray.get([atom_count.remote(index) for index in (1, 1, 1, 1)])
    assert len(set(counts)) == 1 and counts[0] > 0
    assert ray.get(atoms.__ray_call__.remote(lambda actor: sorted(actor.workflows))) == [1]
    assert ray.get(atoms.workflow.remote(1)) == ray.get(atoms.workflow.remote(1))  # one object, put once
    ray.kill(atoms)


@pytest.mark.slow
def test_train_runs_on_a_ray_worker_and_resumes_there(cluster, tmp_path):
    hyperparams = tmp_path / "ppo.yml"
    entry = {"policy": "MlpPolicy", "n_envs": 1, "n_steps": 16, "batch_size": 16, "n_epochs": 1}
    hyperparams.write_text(json.dumps({"ferrogym/DomainWallsBandit-v1": entry}))
    args = ["train", "--algo", "ppo", "--env", "ferrogym/DomainWallsBandit-v1", "--out", str(tmp_path / "run"),
            "--images", "synthetic:0-1,shape=128x128", "--eval-images", "", "--checkpoint-freq", "16",
            "--hyperparams", str(hyperparams), "--backend", "ray", "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:  # 3 envs need a node of 3 CPUs; Ray would wait forever
        main([*args, "--timesteps", "16", "--n-envs", "3"])
    assert exit_info.value.code == 2 and not (tmp_path / "run").exists()
    assert main([*args, "--timesteps", "16"]) == 0
    assert main([*args, "--timesteps", "32", "--resume"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["timesteps"] == 32 and (tmp_path / "run" / "model.zip").is_file()
    assert (tmp_path / "run" / "checkpoints" / "model_32_steps.zip").is_file()


def test_env_creator_makes_custom_reward_envs_on_ray_workers(cluster):
    import ray

    from ferrogym.agents.distributed import env_creator

    env_id = register_reward_env("RayConstant", lambda segmentation: 0.25, bandit=True)
    creator = env_creator(env_id)  # a lambda reward lives in this process's registry only

    @ray.remote
    def one_step(creator, config):
        env = creator(config)
        env.reset(seed=0)
        return env.step(env.action_space.sample())[1]

    assert ray.get(one_step.remote(creator, {"images": "synthetic:0-0,shape=128x128"})) == 0.25


@pytest.mark.parametrize("command", [["benchmark", "--images", "synthetic:0-0"],
                                     ["train", "--algo", "ppo", "--timesteps", "16", "--out", "run"]])
def test_without_ray_the_ray_backend_says_how_to_install_it(tmp_path, command):
    (tmp_path / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")  # Ray as if missing
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ferrogym.agents", *command, "--backend", "ray"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ferrogym {command[0]}: error: --backend ray needs Ray, which is not installed; "
        "install it with: pip install \"ferrogym[distributed]\""]
    assert not (tmp_path / "results").exists() and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_rllib_trains_ppo_on_the_bandit_env(tmp_path):
    pytest.importorskip("ray.rllib", reason="RLlib is not installed; pip install 'ferrogym[rllib]'")
    variables, arguments = SCRIPT_RUNS["rllib_bandit.py"]
    result = subprocess.run([sys.executable, str(REPOSITORY / "scripts" / "rllib_bandit.py"), *arguments],
                            cwd=tmp_path, env={**os.environ, **variables}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "iteration 1:" in result.stdout
