#!/usr/bin/env bash
# Does growth pay once seeds learn fast enough? For each (env.host_lr, env.seed_lr) pair: the static host, the
# teacher schedule of experiment=mixed_imitation grown (conv_heavy in r0c0, prune_dead) and that schedule's
# static-final (its final architecture of each episode trained from epoch 0, same alphas, faults and data
# order), on env=mixed through scripts/compare.py. The pair is chosen on training seeds 1000-1011; the chosen
# pairs given as arguments (read off the training-seed tables) and the default are then reported on held-out
# seeds 7000-7019. Outputs under bench/growth_lr/.
#   nohup scripts/experiments/growth_learning_rates.sh "0.01 0.3" "0.03 0.03" > bench/growth_lr.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root: scripts/compare.py and bench/ are relative to it
PYTHON=${PYTHON:-python}
OUT=bench/growth_lr
mkdir -p "$OUT"
compare() {  # host_lr seed_lr seeds name
  "$PYTHON" scripts/compare.py env=mixed "seeds=$3" "env.host_lr=$1" "env.seed_lr=$2" progress=false \
    'baselines=[static,{name:schedule,blueprint:conv_heavy,slots:[r0c0],prune_dead:true}]' schedule_grid=null \
    'static_final=[schedule_1]' reference=schedule_1 "hydra.run.dir=$OUT/$4" > "$OUT/$4.log" 2>&1
}
TRAIN="[$(seq -s, 1000 1011)]"
HELD_OUT="[$(seq -s, 7000 7019)]"
HELD_OUT_PAIRS=("$@")
for pair in "0.01 0.01" "0.01 0.03" "0.01 0.1" "0.03 0.03" "0.03 0.1" "0.01 0.3" "0.03 0.3" "0.1 0.1" "0.1 0.3"; do
  set -- $pair
  echo "$(date -u +%T) training seeds, host_lr=$1 seed_lr=$2"
  compare "$1" "$2" "$TRAIN" "train_h$1_s$2"
done
for pair in "0.01 0.01" "${HELD_OUT_PAIRS[@]}"; do
  set -- $pair
  echo "$(date -u +%T) held-out seeds, host_lr=$1 seed_lr=$2"
  compare "$1" "$2" "$HELD_OUT" "heldout_h$1_s$2"
done
