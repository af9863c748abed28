#!/usr/bin/env bash
# One lent-GPU session (docs/RESULTS.md, issue "train and ship"): everything in one call, sized
# for a 15-minute lease on one H200 with 16 CPU cores. The machine's own python3 (PyTorch with
# CUDA, torchvision, numpy, scipy, yaml, tqdm) runs the package from python/; no GNU Radio and no
# build needed (the spectrogram takes its numpy path, the same function by the parity tests).
#
#   run(command="OUT=$OUT scripts/gpu_session.sh", timeout_s=600)
#
# 1. datasets on the CPU cores (realistic protocol at 5 rates + the paper protocol),
# 2. SpecDiff in the paper's configuration on each protocol, and DeepLabV3-MobileNetV3 with the
#    default recipe's optimizer at the equal-budget step count, each bounded in wall time,
# 3. exports + evaluations on the test splits; results under $OUT (at most 8 files come back:
#    the paper-config exports, one tarball of metrics/logs/cards).
# Sizes: TRAIN, VAL, TEST, PAPER_TRAIN, WORKERS, MIN_PAPER, MIN_PROTO, BUDGET (environment); the
# defaults fit the lease. On this machine `DEVICE=cpu TRAIN=16 VAL=8 TEST=8 PAPER_TRAIN=16 MIN_PAPER=0.1
# MIN_PROTO=0.1 BUDGET=2 scripts/gpu_session.sh` checks the whole script in a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out}
RUN=${RUN:-runs/gpu}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-16}
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUN"
specdiff() { "$PY" -m gr_specdiff.cli "$@"; }
log() { echo "== $(date +%T) $*"; }

log "device"; "$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and
torch.cuda.get_device_name(0))"
rates="61.44e6 30.72e6 20e6 19.2e6 15.36e6"
gen() { specdiff datagen --no-progress --workers "$WORKERS" --frames-per-shard 50 "$@"; }
log "datasets"
gen --rate $rates --frames "${TRAIN:-16000}" --split train --seed 2 --out "$RUN/data/train"
gen --rate $rates --frames "${VAL:-200}" --split val --out "$RUN/data/val"
gen --rate $rates --frames "${TEST:-2000}" --split test --out "$RUN/data/test"
gen --preset paper --frames "${PAPER_TRAIN:-8000}" --split train --out "$RUN/data/paper_train"
gen --preset paper --frames "${VAL:-200}" --split val --out "$RUN/data/paper_val"
gen --preset paper --frames "${TEST:-1000}" --split test --out "$RUN/data/paper_test"

# The paper's network (configs/paper) on a recipe: train (time-bounded), export, evaluate.
fit() {  # NAME BASE_CONFIG DATA MINUTES [train args]
  local name=$1 base=$2 data=$3 minutes=$4; shift 4
  cat > "$RUN/$name.yaml" <<EOF
base: $PWD/python/gr_specdiff/configs/$base.yaml
name: $name
data: {dir: $RUN/data/$data, val_dir: $RUN/data/${data/train/val}}
EOF
  log "train $name"
  specdiff train --config "$RUN/$name.yaml" --out "$RUN/$name" --device "$DEVICE" \
    --max-minutes "$minutes" --no-progress "$@" | tail -3
}
evaluate() {  # NAME MODEL TEST
  log "eval $1"
  specdiff eval --model "$2" --data "$RUN/data/$3" --out "$RUN/$1/eval" --device "$DEVICE" \
    --sweep-steps 1 2 3 5 --sweep-frames 200 | tail -2
}
fit specdiff_paper paper train "${MIN_PAPER:-5}" --steps "${STEPS_PAPER:-6000}"
specdiff export --checkpoint "$RUN/specdiff_paper/best.pt" --out "$OUT/specdiff_paper"
evaluate specdiff_paper "$OUT/specdiff_paper.yaml" test
specdiff export --checkpoint "$RUN/specdiff_paper/best.pt" --out "$OUT/specdiff_paper" \
  --metrics "$RUN/specdiff_paper/eval/metrics.json"
fit paper_protocol paper paper_train "${MIN_PROTO:-2}" --steps "${STEPS_PROTO:-2500}"
evaluate paper_protocol "$RUN/paper_protocol/best.pt" paper_test
# DeepLabV3-MobileNetV3 at the CPU comparison's budget and recipe (benchmarks/compare_budget.py
# --config default_finetune, docs/RESULTS.md), on this session's realistic data: the row of
# Table II that needs torchvision.
if "$PY" -c "import torchvision" 2>/dev/null; then
  log "train deeplab at equal budget"
  "$PY" benchmarks/compare_budget.py --config default_finetune --only deeplab \
    --train-data "$RUN/data/train" --val-data "$RUN/data/val" --data "$RUN/data/test" \
    --root "$RUN/compare" --budget "${BUDGET:-1000}" --schedule "${BUDGET:-1000}" \
    --frames "${TEST_FRAMES:-500}" --device "$DEVICE"
else
  log "no torchvision here: DeepLabV3 skipped"
fi

log "collect"
tar -czf "$OUT/results.tar.gz" -C "$RUN" --exclude='*.pt' --exclude=data .
ls -la "$OUT"
log "done"
