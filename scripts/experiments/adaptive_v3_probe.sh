#!/usr/bin/env bash
# Section 9 of adaptive_benchmark.md: a design probe of named episode kinds on digits — a deep host (three convolving
# stages, all data) and a shallow host on scarce data (one convolving stage, 150 training examples) — with both seed
# faults, every choice on tuning seeds 2720-2739, scored on 2740-2759. The grid (six blueprints × each slot, all
# watching for dead and unstable seeds, and never growing) is priced at 0 here and re-priced offline by
# reprice_headroom.py; then the closed-loop rule that grows only a host that underfits (germinate_below).
# Resumable (episode cache under $OUT); about 10 minutes on 2 cores.
#   OUT=~/runs/v3 scripts/experiments/adaptive_v3_probe.sh
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/adaptive_v3_probe}
mkdir -p "$OUT"
STEM=tamiyo.env.hosts.stem_host
ENV=(env=digits "env.kinds=[{name:deep,task:digits,host:{_target_:$STEM,depth:3}},{name:shallow_scarce,task:digits,\
task_options:{train_subset:150},host:{_target_:$STEM,depth:1}}]" env.max_seeds=3 env.seed_failure_rate=0.3
     'env.seed_faults=[dead,unstable]' env.host_lr=0.1 env.seed_lr=0.1 env.auto_advance=false objective.param_weight=0
     'static_final=[]' episode_workers=2 progress=false "episode_cache=$OUT/cache")
WATCH='prune_dead:true,prune_unstable:3.0'
"$PYTHON" scripts/compare.py "${ENV[@]}" headroom=true "train_seeds=[$(seq -s, 2720 2739)]" \
  "seeds=[$(seq -s, 2740 2759)]" 'baselines=[static,heuristic,grow_on_plateau]' reference=null \
  'schedule_grid.blueprints=[depthwise,norm,conv_small,conv_light,bottleneck,conv_heavy]' 'schedule_grid.slots=[each]' \
  "schedule_grid.families=[{$WATCH}]" schedule_grid.include_static=true "hydra.run.dir=$OUT/grid"
"$PYTHON" scripts/experiments/reprice_headroom.py --run "$OUT/grid" --param-price 0 10 20 40 100 200 300 400 500 \
  --out "$OUT/prices.csv"
"$PYTHON" scripts/compare.py "${ENV[@]}" "seeds=[$(seq -s, 2740 2759)]" schedule_grid=null reference=static \
  "baselines=[static,{name:schedule,blueprint:norm,slots:[r0c2],$WATCH},\
{name:schedule,blueprint:norm,slots:[r0c2],$WATCH,germinate_below:80.0},\
{name:schedule,blueprint:norm,slots:[r0c2],$WATCH,germinate_below:80.0,germinate_on_plateau:2}]" \
  "hydra.run.dir=$OUT/rule"
