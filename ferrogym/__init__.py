"""ferrogym: unsupervised analysis of atomically resolved STEM images of ferroelectrics, tuned by
physics rather than by eye.

This top-level package holds only the name a user types; the work lives in its subpackages
(``ferrogym.workflows``: the analysis, ``ferrogym.envs``: Gymnasium environments,
``ferrogym.agents``: searchers, benchmarks and the command line):

- ``ferrogym.analyze(image | path | signal, ...)``: find the columns, search the best
  segmentation, and return an :class:`~ferrogym.agents.result.AnalysisResult` (positions,
  labels, phases, displacements in pm, the verdict, the search record, figures, exporters to
  HyperSpy and Atomap);
- ``ferrogym.__version__``: the installed version.

``analyze`` is imported on first use (PEP 562), so ``import ferrogym`` stays cheap and imports
neither Gymnasium nor the agents.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ferrogym")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "analyze"]


def __getattr__(name: str):
    if name == "analyze":
        from ferrogym.agents.analyze import analyze

        return analyze
    raise AttributeError(f"module 'ferrogym' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
