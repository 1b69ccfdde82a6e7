"""Column finding against Atomap's documented route: accuracy, precision, CPU time and memory.

Per synthetic image (the generator's draws at dose 100-400, with their truth) and on the real
SrTiO3 image of ``../shared/data``, each method in a fresh process of its own (so that its peak
memory is its own):

- **ferrogym**: ``Workflow(image).lattice`` (:func:`~ferrogym.workflows.detection.find_columns`
  and the sublattice split), told the pixel size and which sublattice is the brighter (as
  Atomap is told the separation and the zone of the B sites);
- **atomap** (0.4.2, its tutorial's route): ``get_atom_positions`` with the A-A separation it
  is told (0.75 of the true lattice constant; 19 px on SrTiO3, as in its tutorial), centre of
  mass and 2-D Gaussian refinement of the A sublattice, ``find_missing_atoms_from_zone_vector``
  on the zone whose midpoints are the B sites (the cell diagonal for [001], the long side for
  the [110]-type SrTiO3 image), and the B sublattice refined the same way on the image with the
  A Gaussians subtracted (``remove_atoms_from_image_using_2d_gaussian``).

Columns:

- ``a_err_px`` / ``b_err_px``: RMS distance to the true A / B columns, over the true columns
  *both* methods found (Atomap leaves out the border rows; comparing on the columns each found
  would reward that);
- ``b_recall``: share of the true B columns centred in the image found within a/4;
- ``cpu_s``, ``peak_mb``: CPU seconds and peak resident memory of the method's process
  (loading and imports excluded from the CPU time);
- SrTiO3: ``spread_px``, the RMS about its mean of each interior B column's position minus the
  midpoint of its two flanking A columns (a paraelectric crystal: all of it is measurement
  noise), as the issue measured it.

Run: ``.venv/bin/python benchmarks/against_atomap.py [--seeds 3] [--sizes 256,512]`` in an
environment with Atomap (``pip install atomap``); without it, the script says so and stops.
"""

import argparse
import importlib.util
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np
from table import print_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SRTIO3 = SHARED / "SrTiO3_ADF_cropped.hdf5"
#: Atomap's tutorial separation for the SrTiO3 test image, and its B zone there (the long side).
SRTIO3_SEPARATION, SRTIO3_B_ZONE_PX = 19, 41.5


def synthetic(size: int, seed: int):
    """A generator image (its default draws, dose 100-400) and its truth."""
    from ferrogym.workflows import generate, sample_params

    rng = np.random.default_rng(seed)
    params = sample_params(rng, shape=(size, size), dose=float(np.exp(rng.uniform(np.log(100), np.log(400)))),
                           mistilt_offset_px=(0.0, 0.0), sm_fraction=0.0)
    return generate(params, seed=seed)


def run_ferrogym(image, pixel_size_pm, brighter_sublattice="A"):
    from ferrogym.workflows import Workflow

    start = time.process_time()
    lattice = Workflow(image, pixel_size_pm=pixel_size_pm, brighter_sublattice=brighter_sublattice).lattice
    seconds = time.process_time() - start
    return lattice.xy[lattice.sublattice == "A"], lattice.xy[lattice.sublattice == "B"], seconds


def run_atomap(image, separation, b_zone_px):
    import logging

    logging.disable(logging.WARNING)
    import atomap.api as am
    import hyperspy.api as hs
    from atomap.tools import remove_atoms_from_image_using_2d_gaussian

    start = time.process_time()
    signal = hs.signals.Signal2D(np.asarray(image, dtype=float))
    a = am.Sublattice(am.get_atom_positions(signal, separation=separation), image=signal.data)
    a.find_nearest_neighbors()
    a.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    a.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    a.construct_zone_axes()
    zones = a.zones_axis_average_distances
    zone = zones[int(np.argmin([abs(np.hypot(*z) - b_zone_px) for z in zones]))]
    without_a = remove_atoms_from_image_using_2d_gaussian(a.image, a, show_progressbar=False)
    b = am.Sublattice(a.find_missing_atoms_from_zone_vector(zone), without_a)
    b.find_nearest_neighbors()
    b.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    b.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    seconds = time.process_time() - start
    return np.column_stack([a.x_position, a.y_position]), np.column_stack([b.x_position, b.y_position]), seconds


def _child(queue, method, job):
    a_xy, b_xy, seconds = method(*job)
    queue.put((a_xy, b_xy, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_fresh_process(method, *job):
    """(A xy, B xy, CPU seconds, peak MB) of ``method(*job)`` in a process of its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, method, job))
    process.start()
    result = queue.get()
    process.join()
    return result


def errors(found_a, found_b, truth, common):
    """RMS error of the found A and B columns on the true columns of ``common``."""
    from ferrogym.workflows.metrics import match_positions

    tolerance = 0.25 * truth.lattice_constant_px
    out = []
    for name, found in (("A", found_a), ("B", found_b)):
        true = common[name]
        detected, matched = match_positions(found, true, tolerance)
        out.append(float(np.sqrt(np.mean(np.sum((found[detected] - true[matched]) ** 2, axis=1)))))
    return out


def b_recall(found_b, truth):
    from ferrogym.workflows.metrics import match_positions

    true = truth.xy[truth.sublattice == "B"]
    return len(match_positions(found_b, true, 0.25 * truth.lattice_constant_px)[0]) / len(true)


def found_by_both(results, truth):
    """Per sublattice, the true columns that every method found within a/4."""
    from ferrogym.workflows.metrics import match_positions

    common = {}
    for k, name in enumerate(("A", "B")):
        true = truth.xy[truth.sublattice == name]
        keep = np.ones(len(true), bool)
        for result in results:
            hit = np.zeros(len(true), bool)
            hit[match_positions(result[k], true, 0.25 * truth.lattice_constant_px)[1]] = True
            keep &= hit
        common[name] = true[keep]
    return common


def b_spread(a_xy, b_xy, shape, margin_px=25.0):
    """RMS about the mean of interior B minus the midpoint of its two flanking A columns."""
    from scipy.spatial import cKDTree

    distance, index = cKDTree(a_xy).query(b_xy, k=2)
    left, right = a_xy[index[:, 0]], a_xy[index[:, 1]]
    flanking = (np.abs(distance[:, 0] - distance[:, 1]) < 3) & (np.sum((left - b_xy) * (right - b_xy), axis=1) < 0)
    rows, cols = shape
    interior = (b_xy[:, 0] > margin_px) & (b_xy[:, 0] < cols - 1 - margin_px) & (b_xy[:, 1] > margin_px) & (
        b_xy[:, 1] < rows - 1 - margin_px)
    keep = flanking & interior
    displacement = b_xy[keep] - (left[keep] + right[keep]) / 2
    return float(np.sqrt(np.mean(np.sum((displacement - displacement.mean(axis=0)) ** 2, axis=1)))), int(keep.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args()
    if importlib.util.find_spec("atomap") is None:
        print("against_atomap: skipped, Atomap is not installed here (pip install atomap)")
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for seed in range(args.seeds):
            sample = synthetic(size, seed)
            truth, a = sample.truth, sample.truth.lattice_constant_px
            ours = in_fresh_process(run_ferrogym, sample.image, truth.pixel_size_pm, sample.params.brighter_sublattice)
            theirs = in_fresh_process(run_atomap, sample.image, int(0.75 * a), a * np.sqrt(2))
            common = found_by_both([ours, theirs], truth)
            for name, result in (("ferrogym", ours), ("atomap", theirs)):
                rows.append([f"{size}/{seed}", f"{1 / sample.params.ab_ratio:.2f}", name,
                             *errors(result[0], result[1], truth, common), b_recall(result[1], truth), result[2], result[3]])
    print_table(["image", "B/A", "method", "a_err_px", "b_err_px", "b_recall", "cpu_s", "peak_mb"], rows)
    print()
    summary = []
    for name in ("ferrogym", "atomap"):
        mine = np.array([r[3:] for r in rows if r[2] == name], dtype=float)
        summary.append([name, *np.median(mine, axis=0)])
    ratio = [summary[1][k] / summary[0][k] for k in (1, 2, 4, 5)]
    print_table(["method", "median a_err_px", "median b_err_px", "median b_recall", "median cpu_s", "median peak_mb"], summary)
    print(f"atomap / ferrogym: A error {ratio[0]:.3f}, B error {ratio[1]:.3f}, CPU {ratio[2]:.0f}x, memory {ratio[3]:.1f}x")
    if SRTIO3.is_file():
        from ferrogym.workflows.io import load_image

        image = load_image(SRTIO3)
        ours = in_fresh_process(run_ferrogym, image.array, image.pixel_size_pm)
        theirs = in_fresh_process(run_atomap, image.array, SRTIO3_SEPARATION, SRTIO3_B_ZONE_PX)
        print()
        print_table(["SrTiO3", "A", "B", "spread_px", "interior_b", "cpu_s", "peak_mb"],
                    [[name, len(r[0]), len(r[1]), *b_spread(r[0], r[1], image.array.shape), r[2], r[3]]
                     for name, r in (("ferrogym", ours), ("atomap", theirs))])
    else:
        print(f"\nSrTiO3: skipped, {SRTIO3} is not here")


if __name__ == "__main__":
    main()
