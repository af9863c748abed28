#!/usr/bin/env bash
# The datasets behind the shipped models (docs/RESULTS.md). Resumable: rerun to continue.
#   scripts/make_datasets.sh [TRAIN_FRAMES] [VAL_FRAMES] [TEST_FRAMES] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
train=${1:-3000} val=${2:-200} test=${3:-400} workers=${4:-2}
rates="61.44e6 30.72e6 20e6 19.2e6 15.36e6"
gen() { .venv/bin/specdiff datagen --no-progress --workers "$workers" --rate $rates \
          --frames-per-shard 50 "$@"; }
gen --frames "$val" --split val --out data/val
gen --frames "$train" --split train --out data/train
gen --frames "$test" --split test --out data/test
