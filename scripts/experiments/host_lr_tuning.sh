#!/usr/bin/env bash
# Hosts trained well: the static host's SGD learning rate (momentum 0.9, weight decay 5e-4, batch 128, 25
# epochs) for each task and host width of env=adaptive, on tuning seeds 2000-2004 only (never a training or
# held-out seed of the benchmark). One evaluation per (task, width, lr); the table is read off the evaluation.csv
# files by scripts/experiments/host_lr_table.py. Outputs under ${OUT:-bench/host_lr}/.
#   nohup scripts/experiments/host_lr_tuning.sh > bench/host_lr.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root: scripts/evaluate.py and bench/ are relative to it
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/host_lr}
mkdir -p "$OUT"
for task in mnist1d digits; do
  for width in 0.5 1.0 2.0; do
    for lr in 0.01 0.03 0.1 0.2 0.4; do
      echo "$(date -u +%T) $task width $width host_lr $lr"
      "$PYTHON" scripts/evaluate.py "env=$task" "env.host_widths=[$width]" "env.host_lr=$lr" policy=static \
        'seeds=[2000,2001,2002,2003,2004]' env.num_envs=1 episode_workers="${WORKERS:-1}" progress=false \
        "hydra.run.dir=$OUT/${task}_w${width}_lr${lr}" > "$OUT/${task}_w${width}_lr${lr}.log" 2>&1
    done
  done
done
