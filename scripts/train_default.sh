#!/usr/bin/env bash
# The whole recipe of the shipped default model, one command, resumable at every stage:
#   scripts/train_default.sh     datasets (skipped when complete), stage 1 (config default,
#                                STEPS1=6000 steps on data/train), stage 2 (default_finetune,
#                                STEPS2=10000 steps on data/train_big from stage 1's export),
#                                export to models/specdiff_default, evaluation on data/test
# STAGE1=models/specdiff_default.yaml skips stage 1 and fine-tunes that model instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# Short OpenMP spin before sleeping: with libgomp's default spin, 2 threads on 2 shared cores
# lose most of their time at barriers whenever another process runs (measured 0.65 -> 3.7 s per
# step); fully passive waits cost 35 % on an idle machine. 20k spins keeps both cases fast.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-20000}
train() { .venv/bin/specdiff train --threads 2 --no-progress "$@"; }
# --resume where a run directory holds a checkpoint, else the run's start options.
start() { if [ -f "$1/checkpoint.pt" ]; then echo --resume; else echo "${@:2}"; fi; }
scripts/make_datasets.sh
stage1=${STAGE1:-runs/default/export/specdiff_default_stage1.yaml}
if [ -z "${STAGE1:-}" ]; then
  train --config default --out runs/default --steps "${STEPS1:-6000}" $(start runs/default)
  .venv/bin/specdiff export --checkpoint runs/default/best.pt --steps 1 \
    --out runs/default/export/specdiff_default_stage1
fi
train --config default_finetune --out runs/default_ft --steps "${STEPS2:-10000}" \
  $(start runs/default_ft --init-from "$stage1")
# Export, measure on the test split, export again with the measurements in the model card.
ship() { .venv/bin/specdiff export --checkpoint runs/default_ft/best.pt --steps 1 \
           --out models/specdiff_default "$@"; }
ship
.venv/bin/specdiff eval --model models/specdiff_default --data data/test --out runs/default_ft/eval \
  --sweep-steps 1 2 3 5 10 --sweep-frames 200
ship --metrics runs/default_ft/eval/metrics.json
