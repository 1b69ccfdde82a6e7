"""One torch thread for small, latency-bound torch work (a VAE on patches, a Gaussian process
over a few dozen trials), whatever the process's setting.

With more threads, waking them costs more than the arithmetic: Optuna's Gaussian-process asks
over the descriptors space took 7.0-7.5 s per 50 trials with 2 threads and 4.7-4.9 s with one on
2 cores. Results also stop depending on how many cores the machine has. torch is imported on
entry, so importing this module does not load it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, then restore the process's setting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
