#!/bin/sh
# Trains the PPO policy shipped in agents/policies/ppo-search (used by `ferrogym demo`) and copies
# the files the package needs. Training images are synthetic seeds 0-999, held-out evaluation on
# 1000-1007; the demo and the README's benchmark use seeds 2000 and up. The shipped run took 2,700 s
# of training (45 min) on 2 cores shared with a benchmark.
#
# Environment variables (the defaults are the shipped run; the tests set them to train for a few
# steps into a temporary folder): TIMESTEPS (20000), OUT (the run folder,
# results/policies/ppo-search), SHIP_TO (where the policy files are copied,
# agents/policies/ppo-search), FERROGYM (the command, .venv/bin/ferrogym). Further arguments go
# to `ferrogym train`.
set -eu
cd "$(dirname "$0")/.."
TIMESTEPS="${TIMESTEPS:-20000}"
OUT="${OUT:-results/policies/ppo-search}"
SHIP_TO="${SHIP_TO:-agents/policies/ppo-search}"
FERROGYM="${FERROGYM:-.venv/bin/ferrogym}"
"$FERROGYM" train --algo ppo --env ferrogym/DomainWalls-v0 --timesteps "$TIMESTEPS" --seed 0 \
    --images "synthetic:0-999,shape=256x256" --eval-images "synthetic:1000-1007,shape=256x256" \
    --eval-freq 4000 --eval-episodes 8 --checkpoint-freq 2000 \
    --env-kwarg budget=50 --env-kwarg cache_images=16 --out "$OUT" "$@"
mkdir -p "$SHIP_TO"
cp "$OUT/run.json" "$OUT/hyperparams.yml" "$OUT/model.zip" "$SHIP_TO/"
