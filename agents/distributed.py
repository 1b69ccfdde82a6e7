"""ferrogym on a Ray cluster: the benchmark's searches, SB3 training, and envs for RLlib.

Ray is optional (``pip install "ferrogym[distributed]"``) and imported only when asked for, so
the default install and every other command work without it.

- Benchmark (:func:`run_on_ray`): each (strategy, image, seed) search is one Ray task (one CPU)
  running the local backend's code (:func:`~ferrogym.agents.benchmark.run_search_of`). Tasks put
  their records on a queue that lives on the driver's node; the driver appends them to
  ``evaluations.jsonl``, so resuming works as with the local backend. Ray retries a task whose
  node died; the retry replays the same deterministic steps and the driver drops those it has.
- Atoms once per node: one :class:`NodeAtoms` actor per node finds an image's atoms the first
  time a task of that node asks, and keeps the workflow in the node's object store, where every
  later task of the node reads it without a copy of the arrays.
- Training (:func:`train_on_ray`): :func:`~ferrogym.agents.training.train` runs in one task; the
  run folder travels to the worker and back, so no shared file system is needed.
- RLlib (:func:`env_creator`): Ray workers do not see this process's Gymnasium registry, so the
  creator carries the env's registered spec, custom-reward ids included.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import gymnasium as gym

from ferrogym.envs.registration import ENV_VARIABLE
from ferrogym.workflows.errors import InputError

from . import benchmark as bench
from .records import append_record
from .report import search_key

INSTALL = 'pip install "ferrogym[distributed]"'


def import_ray():
    """The ``ray`` module, or InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--backend ray needs Ray, which is not installed; install it with: {INSTALL}") from None
    return ray


@contextmanager
def connected(address: str | None) -> Iterator:
    """Ray, connected to the cluster at ``address`` (None: the one started on this machine, else a
    new local one) unless this process already is; disconnects only what it connected. Child
    processes of the tasks see this process's custom-reward env ids (:data:`ENV_VARIABLE`)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    env_vars = {ENV_VARIABLE: os.environ[ENV_VARIABLE]} if ENV_VARIABLE in os.environ else {}
    try:
        ray.init(address=address, runtime_env={"env_vars": env_vars}, logging_level=logging.WARNING,
                 log_to_driver=False)
    except ConnectionError as error:
        raise InputError(f"{error}; check --address, and on a cluster with token authentication set "
                         "RAY_AUTH_MODE=token and its token here (see the README, Scaling out)") from None
    try:
        yield ray
    finally:
        ray.shutdown()


# ------------------------------------------------------------------------------------- benchmark


class NodeAtoms:
    """One node's images of a benchmark with their atoms found, each put once into the node's
    object store."""

    def __init__(self, benchmark):
        self.benchmark, self.workflows = benchmark, {}

    def workflow(self, index: int) -> list:
        """[reference to the workflow of image ``index``], in a list so that Ray hands over the
        reference rather than a copy."""
        if index not in self.workflows:
            self.workflows[index] = import_ray().put(bench.workflow_with_atoms(self.benchmark, index))
        return [self.workflows[index]]


def _atoms_name(run: str, node: str) -> str:
    return f"ferrogym-atoms-{run}-{node}"


def _node_workflow(ray, run: str, benchmark, index: int):
    """Image ``index``'s workflow from this node's :class:`NodeAtoms`; a node that joined after the
    start has none and finds the atoms itself."""
    try:
        atoms = ray.get_actor(_atoms_name(run, ray.get_runtime_context().get_node_id()))
    except ValueError:
        return bench.workflow_with_atoms(benchmark, index)
    return ray.get(ray.get(atoms.workflow.remote(index))[0])


def _search_task(run: str, benchmark, search, queue) -> None:
    ray = import_ray()
    workflow = _node_workflow(ray, run, benchmark, search.index)
    bench.run_search_of(benchmark, search, workflow, queue.put)


def _oracle_task(run: str, benchmark, index: int) -> dict:
    workflow = _node_workflow(import_ray(), run, benchmark, index)
    return bench.oracle_record(workflow, benchmark.images.name(index))


def run_on_ray(benchmark, searches: list, oracles: list[int], address: str | None,
               on_record: Callable[[], None] | None = None) -> None:
    """Run ``searches`` and the oracle of images ``oracles`` as Ray tasks; append their records
    to the benchmark's files as they arrive, each evaluation once."""
    with connected(address) as ray:
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        def on_node(node: str) -> dict:
            return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}

        run = uuid.uuid4().hex[:8]
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
        atoms = [ray.remote(NodeAtoms).options(name=_atoms_name(run, node), **on_node(node)).remote(benchmark)
                 for node in nodes]
        queue = Queue(actor_options=on_node(ray.get_runtime_context().get_node_id()))
        search_task, oracle_task = ray.remote(num_cpus=1)(_search_task), ray.remote(num_cpus=1)(_oracle_task)
        oracle_refs = {oracle_task.remote(run, benchmark, index) for index in oracles}  # the longest, first
        pending = [*oracle_refs, *(search_task.remote(run, benchmark, search, queue) for search in searches)]
        sink = _RecordSink(benchmark, searches, on_record)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
                sink.take(queue.get_nowait_batch(queue.qsize()))  # a task's records are queued before it ends
                for ref in ready:
                    result = _result(ray, ref)
                    if ref in oracle_refs:
                        append_record(benchmark.oracle_path, result)
        finally:
            for ref in pending:  # after an error
                ray.cancel(ref)
            for actor in atoms:
                ray.kill(actor)
            queue.shutdown(force=True)


class _RecordSink:
    """Appends each search's records in step order, dropping steps it already has (those a task
    retried after its node died sends again)."""

    def __init__(self, benchmark, searches: list, on_record: Callable[[], None] | None):
        self.path, self.on_record = benchmark.records_path, on_record
        self.next_step = {}
        for search in searches:
            name = benchmark.images.name(search.index)
            self.next_step[(bench.protocol_of(search.strategy), search.strategy, name, search.seed)] = \
                len(search.replay) + 1

    def take(self, records: list[dict]) -> None:
        for record in records:
            key = search_key(record)
            if record["step"] != self.next_step[key]:
                continue
            append_record(self.path, record)
            self.next_step[key] += 1
            if self.on_record is not None:
                self.on_record()


def _result(ray, ref):
    """A task's result; bad input inside a task ends as the same one-line InputError as locally."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, InputError):
            raise error.cause from None
        raise


# -------------------------------------------------------------------------------------- training


def train_on_ray(algo: str, env_id: str, timesteps: int, out: str | Path, *, address: str | None = None,
                 n_envs: int | None = None, hyperparams: str | Path | None = None, **settings) -> Path:
    """:func:`~ferrogym.agents.training.train` in one Ray task with a CPU per env; the run folder
    ``out`` (for ``resume``) and the hyperparameter file go with it, the result comes back into
    ``out``. ``settings`` are train's other keyword arguments."""
    from .training import load_hyperparams

    import_ray()
    params = load_hyperparams(algo, env_id, hyperparams)  # bad input fails here, before connecting
    n_envs = int(n_envs or params.get("n_envs", 1))
    files = {"hyperparams.yml": Path(hyperparams).read_bytes()} if hyperparams is not None else {}
    kwargs = dict(algo=algo, env_id=env_id, timesteps=timesteps, n_envs=n_envs, progress_bar=False, **settings)
    out = Path(out)
    with connected(address) as ray:
        largest = max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])
        if n_envs > largest:  # Ray would wait for such a node forever
            raise InputError(f"{n_envs} envs need {n_envs} CPUs on one node, and the largest node of the cluster "
                             f"has {largest:g}; use --n-envs {int(largest)} or fewer")
        task = ray.remote(num_cpus=n_envs)(_train_task)
        folder = _result(ray, task.remote(_pack(out), files, kwargs))
    _unpack(folder, out)
    return out


def _train_task(folder: bytes, files: dict[str, bytes], kwargs: dict) -> bytes:
    from .training import train

    with tempfile.TemporaryDirectory(prefix="ferrogym-train-") as scratch:
        out = Path(scratch) / "run"
        _unpack(folder, out)
        for name, data in files.items():
            (Path(scratch) / name).write_bytes(data)
        hyperparams = Path(scratch) / "hyperparams.yml" if files else None
        train(out=out, hyperparams=hyperparams, **kwargs)
        return _pack(out)


def _pack(folder: Path) -> bytes:
    """A folder (or nothing, when it does not exist) as tar bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        if folder.is_dir():
            archive.add(folder, arcname=".")
    return buffer.getvalue()


def _unpack(data: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(folder, filter="data")


# ----------------------------------------------------------------------------------------- RLlib


def env_creator(env_id: str) -> Callable[[dict], gym.Env]:
    """A function of RLlib's ``env_config`` that makes ``env_id``, for
    ``ray.tune.register_env(name, env_creator(env_id))``.

    It carries the spec registered in this process (entry point and keyword arguments, a custom
    reward included), so a Ray worker makes the same env without this process's registry.
    ``env_id`` may have a ``module:`` prefix, as :func:`~ferrogym.envs.register_reward_env` returns.
    """
    module, _, name = env_id.rpartition(":")
    importlib.import_module(module or "ferrogym.envs")
    try:
        spec = gym.spec(name)
    except gym.error.Error as error:
        raise InputError(f"unknown env id {env_id!r}: {error}") from None
    return partial(_make, spec)


def _make(spec: gym.envs.registration.EnvSpec, env_config: dict) -> gym.Env:
    return gym.make(spec, **env_config)
