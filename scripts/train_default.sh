#!/usr/bin/env bash
# The whole recipe of the shipped default model, one command, resumable at every stage:
#   scripts/train_default.sh            # datasets (skipped when complete), train, export, eval
#   STEPS=20000 scripts/train_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-10000}
scripts/make_datasets.sh
resume=""; [ -f runs/default/checkpoint.pt ] && resume="--resume"
.venv/bin/specdiff train --config default --out runs/default --steps "$steps" --threads 2 \
  --no-progress $resume
.venv/bin/specdiff export --checkpoint runs/default/best.pt --out models/specdiff_default
.venv/bin/specdiff eval --model models/specdiff_default --data data/test --out runs/default/eval
