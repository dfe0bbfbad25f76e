#!/usr/bin/env bash
# Section 10 of adaptive_benchmark.md, out of sample: the two kinds of adaptive_v4_probe.sh (ordered_pairs with its
# atoms 2 or 14 samples apart, a host of one convolving stage), the grid narrowed on the tuning seeds to the two
# blueprints that were ever best there (conv_light, depthwise; each slot and all slots, watching for dead and
# unstable seeds; never growing), chosen on training seeds 1000-1019 and reported on held-out seeds 7000-7039, priced
# at 0 and re-priced offline. Resumable (episode cache under $OUT); about 25 minutes on 2 cores.
#   OUT=~/runs/v4r scripts/experiments/adaptive_v4_report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/adaptive_v4_report}
mkdir -p "$OUT"
STEM=tamiyo.env.hosts.stem_host
ENV=(env=mnist1d "env.kinds=[{name:near,task:ordered_pairs,task_options:{gap:2},host:{_target_:$STEM,depth:1}},\
{name:far,task:ordered_pairs,task_options:{gap:14},host:{_target_:$STEM,depth:1}}]" env.max_seeds=3
     env.seed_failure_rate=0.3 'env.seed_faults=[dead,unstable]' env.host_lr=0.1 env.seed_lr=0.1
     env.auto_advance=false objective.param_weight=0 'static_final=[]' episode_workers=2 progress=false
     "episode_cache=$OUT/cache")
WATCH='prune_dead:true,prune_unstable:3.0'
"$PYTHON" scripts/compare.py "${ENV[@]}" headroom=true "train_seeds=[$(seq -s, 1000 1019)]" \
  "seeds=[$(seq -s, 7000 7039)]" 'baselines=[static,heuristic,grow_on_plateau]' reference=null \
  'schedule_grid.blueprints=[conv_light,depthwise]' 'schedule_grid.slots=[each,all]' \
  "schedule_grid.families=[{$WATCH}]" schedule_grid.include_static=true "hydra.run.dir=$OUT/report"
"$PYTHON" scripts/experiments/reprice_headroom.py --run "$OUT/report" --param-price 0 5 10 20 30 40 60 \
  --out "$OUT/prices.csv"
