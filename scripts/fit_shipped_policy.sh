#!/bin/sh
# Fits the reward-table policy shipped in agents/policies/neighbours (used by `ferrogym demo`,
# and by `static:best`) and copies the files the package needs. Training images: synthetic seeds
# 3000-3063 of every family (domain patterns, no-wall images, smooth rotations, films on a
# substrate) at 256-1024 px, analysed from the image; and seeds 5000-5095 of every family, with
# ferroelastic twins of up to 0.07 rad, given only as the columns found on them (with their
# sublattice, or the A sites alone), so that a positions file is searched with rows of its kind.
# The demo and the README's benchmarks use other seeds. The table (every configuration of the
# coarse grid on every image) took about 40 min on 2 cores for the images, and 25 min for the positions.
#
# Environment variables (the defaults are the shipped run; the tests set them to fit a tiny
# table into a temporary folder): IMAGES, POSITIONS (the two training SPECs), OUT (the run
# folder, results/policies/neighbours), SHIP_TO (where the policy files are copied,
# agents/policies/neighbours), FERROGYM (the command, .venv/bin/ferrogym). Further arguments go
# to `ferrogym fit-policy`. Rerunning resumes the table where it stopped.
set -eu
cd "$(dirname "$0")/.."
SIZES="shape=256x256|384x384|512x512|768x768|1024x1024"
IMAGES="${IMAGES:-synthetic:3000-3063,family=any,$SIZES}"
POSITIONS="${POSITIONS:-synthetic:5000-5095,family=any,$SIZES,twin_shear=0:0.07,input=positions|a_positions}"
OUT="${OUT:-results/policies/neighbours}"
SHIP_TO="${SHIP_TO:-agents/policies/neighbours}"
FERROGYM="${FERROGYM:-.venv/bin/ferrogym}"
"$FERROGYM" fit-policy --images "$IMAGES" --images "$POSITIONS" --out "$OUT" --workers 2 "$@"
mkdir -p "$SHIP_TO"
cp "$OUT/run.json" "$OUT/candidates.json" "$OUT/table.jsonl" "$SHIP_TO/"
