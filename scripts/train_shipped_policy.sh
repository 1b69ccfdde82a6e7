#!/bin/sh
# Trains the PPO policy shipped in agents/policies/ppo-search (used by `ferrogym demo`) and copies
# the files the package needs. Training images are synthetic seeds 0-999, held-out evaluation on
# 1000-1007; the demo and the README's benchmark use seeds 2000 and up. The shipped run took 2,700 s
# of training (45 min) on 2 cores shared with a benchmark.
set -eu
cd "$(dirname "$0")/.."
.venv/bin/ferrogym train --algo ppo --env ferrogym/DomainWalls-v0 --timesteps 20000 --seed 0 \
    --images "synthetic:0-999,shape=256x256" --eval-images "synthetic:1000-1007,shape=256x256" \
    --eval-freq 4000 --eval-episodes 8 --checkpoint-freq 2000 \
    --env-kwarg budget=50 --env-kwarg cache_images=16 --out results/policies/ppo-search "$@"
mkdir -p agents/policies/ppo-search
cp results/policies/ppo-search/run.json results/policies/ppo-search/hyperparams.yml \
   results/policies/ppo-search/model.zip agents/policies/ppo-search/
