"""Time ferrogym.workflows.synthetic.generate on square images of growing size.

Run: ``.venv/bin/python benchmarks/synthetic_speed.py [--repeats 7]``. Prints the median and
minimum wall-clock seconds per image for the default parameters (two stripe families, dose 200,
the probe's skirt and cross-talk on), for "core only" (the same without skirt: what rendering
the skirt costs) and for a "busy" setting with every artefact switched on (Sm with an antipolar
band, jitter, drift, background, read noise).
"""

import argparse
import time

import numpy as np

from ferrogym.workflows.synthetic import SyntheticParams, generate

SIZES = (256, 512, 1024)
SETTINGS = {
    "default": {},
    "core only": dict(skirt_fraction=0.0),
    "busy": dict(sm_fraction=0.15, scan_jitter_px=0.3, drift_shear=0.02, background=0.2, read_noise=1.0,
                 lattice_rotation_deg=4.0, mistilt_offset_px=(0.3, -0.2)),
}


def time_generate(params: SyntheticParams, repeats: int) -> np.ndarray:
    """Seconds per generate() call, one warm-up call excluded."""
    generate(params, seed=0)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        generate(params, seed=seed)
        times.append(time.perf_counter() - start)
    return np.array(times)


def main() -> None:
    """Print a table of median and minimum seconds per image size and setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{'setting':<9} {'size':>6} {'median s':>9} {'min s':>8}")
    for name, extra in SETTINGS.items():
        for size in SIZES:
            times = time_generate(SyntheticParams(shape=(size, size), **extra), args.repeats)
            print(f"{name:<9} {size:>6} {np.median(times):>9.4f} {times.min():>8.4f}")


if __name__ == "__main__":
    main()
