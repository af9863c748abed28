#!/usr/bin/env bash
# The whole recipe of the shipped default model, one command, resumable at every stage:
#   scripts/train_default.sh            # datasets (skipped when complete), train, export, eval
#   STEPS=20000 scripts/train_default.sh   (default 6000 steps of 8 frames, ~1 h on 2 idle cores)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-6000}
# Short OpenMP spin before sleeping: with libgomp's default spin, 2 threads on 2 shared cores
# lose most of their time at barriers whenever another process runs (measured 0.65 -> 3.7 s per
# step); fully passive waits cost 35 % on an idle machine. 20k spins keeps both cases fast.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-20000}
scripts/make_datasets.sh
resume=""; [ -f runs/default/checkpoint.pt ] && resume="--resume"
.venv/bin/specdiff train --config default --out runs/default --steps "$steps" --threads 2 \
  --no-progress $resume
.venv/bin/specdiff export --checkpoint runs/default/best.pt --out models/specdiff_default
.venv/bin/specdiff eval --model models/specdiff_default --data data/test --out runs/default/eval
