"""Remake the physics-grade test images, tests/data/simulated/*.npz (needs ferrogym[simulate]).

    python scripts/make_simulated_images.py [NAME ...]

Each image is a 16 x 16 cell BiFeO3-like supercell, 8 cells thick, simulated by abTEM's PRISM
(:mod:`ferrogym.workflows.multislice`, its defaults: 200 kV, 20 mrad, 70-150 mrad, 2 frozen-phonon
configurations) at 16 px per cell (256 x 256 px), then Poisson counts at 300 per A column.
``noise_free/registration.npz``, where the tests check that truth and pixels register, is one
domain of 8 x 8 cells with 8 configurations, noise-free: with 2 configurations the ensemble is
too small to average the thermal scatter out, and each Bi column's image sits 0.07 px (rms per
axis) off its site, 0.035 px with 8. Seeds are fixed: the same command writes the same files. It
prints the time per image (2-5 minutes each on 2 busy CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ferrogym.workflows.multislice import SimulationParams, simulate, with_dose
from ferrogym.workflows.truthfile import save_truth

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "simulated"
DOSE = 300.0  # counts at the median A column's peak
#: name -> the domains of SimulationParams (variants, stripe width in cells, wall normal) and more.
IMAGES = {
    "stripes": dict(variants=(0, 3), domain_cells=4, wall_normal="x"),  # neutral walls, 90 degrees in projection
    "four_stripes": dict(variants=(0, 1, 2, 3), domain_cells=4, wall_normal="x"),
    "wall_90": dict(variants=(0, 1), domain_cells=8, wall_normal="y"),  # polarization turns by 90 degrees
    "wall_45": dict(variants=(0, 2), domain_cells=8, wall_normal="diagonal"),  # 180 degree walls along [110]
    "single": dict(variants=(0,)),
    "weak": dict(variants=(0, 3), domain_cells=4, wall_normal="x", displacement_pm=13.0),
    "samarium": dict(variants=(1, 2), domain_cells=8, wall_normal="x", dopant_fraction=0.14),
}
#: A noise-free image for the registration test, written to noise_free/.
REGISTRATION = dict(cells=8, phonon_configs=8, variants=(0,))


def main(names: list[str]) -> None:
    known = [*IMAGES, "registration"]
    unknown = sorted(set(names) - set(known))
    if unknown:
        sys.exit(f"unknown image(s) {unknown}; choose from {known}")
    (OUT / "noise_free").mkdir(parents=True, exist_ok=True)
    for seed, (name, fields) in enumerate(IMAGES.items()):
        if names and name not in names:
            continue
        start = time.perf_counter()
        simulation = simulate(SimulationParams(seed=seed, **fields))
        parameters = {**simulation.parameters, "dose": DOSE, "dose_seed": seed}
        save_truth(OUT / f"{name}.npz", with_dose(simulation.image, DOSE, seed), simulation.truth, parameters)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    if not names or "registration" in names:
        start = time.perf_counter()
        simulation = simulate(SimulationParams(seed=len(IMAGES), **REGISTRATION))
        save_truth(OUT / "noise_free" / "registration.npz", simulation.image.astype("float32"), simulation.truth,
                   {**simulation.parameters, "dose": None})
        print(f"registration: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
