#!/usr/bin/env bash
# The datasets behind the shipped models (docs/RESULTS.md, "Data"). Resumable: rerun to continue.
#   scripts/make_datasets.sh            # realistic protocol: val, train (stage 1), train_big
#                                       # (stage 2, seed 1), train_more (stage 6, seed 2),
#                                       # train_more2 (stage 7, seed 3), test (fixed TEST_SEED),
#                                       # val1k and val4k (the same val split, longer)
#   scripts/make_datasets.sh paper      # the seed authors' protocol (preset paper, 61.44 MS/s)
# Frame counts (environment): TRAIN=3000 TRAIN_BIG=12000 TRAIN_MORE=12000 TRAIN_MORE2=8000
#   VAL=200 VAL1K=1000 VAL4K=4000 TEST=2000 WORKERS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${WORKERS:-2}
gen() { .venv/bin/specdiff datagen --no-progress --workers "$workers" --frames-per-shard 50 "$@"; }
if [ "${1:-realistic}" = paper ]; then
  gen --preset paper --frames "${TRAIN:-3000}" --split train --out data/paper_train
  gen --preset paper --frames "${VAL:-200}" --split val --out data/paper_val
  gen --preset paper --frames "${TEST:-1000}" --split test --out data/paper_test
  exit 0
fi
rates="61.44e6 30.72e6 20e6 19.2e6 15.36e6"
gen --rate $rates --frames "${VAL:-200}" --split val --out data/val
# The same split's first 1,000 frames (its first 200 are data/val): for choosing between
# candidates closer than the 200 frames can tell apart (docs/TRAINING_LOG.md, 2026-12-04),
# and its first 4,000, on which a candidate must win from 2026-12-07 on.
gen --rate $rates --frames "${VAL1K:-1000}" --split val --out data/val1k
gen --rate $rates --frames "${VAL4K:-4000}" --split val --out data/val4k
gen --rate $rates --frames "${TRAIN:-3000}" --split train --out data/train
gen --rate $rates --frames "${TRAIN_BIG:-12000}" --split train --seed 1 --out data/train_big
gen --rate $rates --frames "${TRAIN_MORE:-12000}" --split train --seed 2 --out data/train_more
gen --rate $rates --frames "${TRAIN_MORE2:-8000}" --split train --seed 3 --out data/train_more2
gen --rate $rates --frames "${TEST:-2000}" --split test --out data/test
