#!/usr/bin/env bash
# Section 10 of adaptive_benchmark.md: a design probe of two episode kinds that need a layer in different places —
# `ordered_pairs` with its atoms 2 samples apart (near) or 14 apart (far), each on a host of one convolving stage
# (tamiyo.env.hosts.stem_host, depth 1) — with both seed faults, every choice on tuning seeds 2800-2819, scored on
# 2820-2839. The grid (five blueprints × each slot and all slots, all watching for dead and unstable seeds, and
# never growing) is priced at 0 here and re-priced offline by reprice_headroom.py.
# Resumable (episode cache under $OUT); about 25 minutes on 2 cores.
#   OUT=~/runs/v4 scripts/experiments/adaptive_v4_probe.sh
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/adaptive_v4_probe}
mkdir -p "$OUT"
STEM=tamiyo.env.hosts.stem_host
ENV=(env=mnist1d "env.kinds=[{name:near,task:ordered_pairs,task_options:{gap:2},host:{_target_:$STEM,depth:1}},\
{name:far,task:ordered_pairs,task_options:{gap:14},host:{_target_:$STEM,depth:1}}]" env.max_seeds=3
     env.seed_failure_rate=0.3 'env.seed_faults=[dead,unstable]' env.host_lr=0.1 env.seed_lr=0.1
     env.auto_advance=false objective.param_weight=0 'static_final=[]' episode_workers=2 progress=false
     "episode_cache=$OUT/cache")
WATCH='prune_dead:true,prune_unstable:3.0'
"$PYTHON" scripts/compare.py "${ENV[@]}" headroom=true "train_seeds=[$(seq -s, 2800 2819)]" \
  "seeds=[$(seq -s, 2820 2839)]" 'baselines=[static,heuristic,grow_on_plateau]' reference=null \
  'schedule_grid.blueprints=[depthwise,conv_small,conv_light,norm,bottleneck]' 'schedule_grid.slots=[each,all]' \
  "schedule_grid.families=[{$WATCH}]" schedule_grid.include_static=true "hydra.run.dir=$OUT/grid"
"$PYTHON" scripts/experiments/reprice_headroom.py --run "$OUT/grid" --param-price 0 5 10 20 30 40 60 \
  --out "$OUT/prices.csv"
