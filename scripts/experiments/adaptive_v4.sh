#!/usr/bin/env bash
# Section 10 of adaptive_benchmark.md: two episode kinds that need a layer in different places — `ordered_pairs`
# with its atoms 2 samples apart (near) or 14 apart (far), each on a host of one convolving stage
# (tamiyo.env.hosts.stem_host, depth 1) — with both seed faults, a grid whose every schedule watches for dead and
# unstable seeds (and never growing), priced at 0 here and re-priced offline by reprice_headroom.py.
#   probe:  five blueprints × each slot and all slots, chosen on tuning seeds 2800-2819, scored on 2820-2839
#           (about 25 minutes on 2 cores);
#   report: the grid narrowed on the tuning seeds to the two blueprints ever best there (conv_light, depthwise),
#           chosen on training seeds 1000-1019, reported on held-out seeds 7000-7039 (about 25 minutes on 2 cores).
# Resumable (episode cache under $OUT).
#   OUT=~/runs/v4p scripts/experiments/adaptive_v4.sh probe
#   OUT=~/runs/v4r scripts/experiments/adaptive_v4.sh report
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root
case "${1:-}" in
  probe) TRAIN=(2800 2819) SCORED=(2820 2839) BLUEPRINTS=depthwise,conv_small,conv_light,norm,bottleneck RUN=grid ;;
  report) TRAIN=(1000 1019) SCORED=(7000 7039) BLUEPRINTS=conv_light,depthwise RUN=report ;;
  *) echo "usage: $0 probe|report" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/adaptive_v4_$1}
mkdir -p "$OUT"
STEM=tamiyo.env.hosts.stem_host
ENV=(env=mnist1d "env.kinds=[{name:near,task:ordered_pairs,task_options:{gap:2},host:{_target_:$STEM,depth:1}},\
{name:far,task:ordered_pairs,task_options:{gap:14},host:{_target_:$STEM,depth:1}}]" env.max_seeds=3
     env.seed_failure_rate=0.3 'env.seed_faults=[dead,unstable]' env.host_lr=0.1 env.seed_lr=0.1
     env.auto_advance=false objective.param_weight=0 'static_final=[]' episode_workers=2 progress=false
     "episode_cache=$OUT/cache")
WATCH='prune_dead:true,prune_unstable:3.0'
"$PYTHON" scripts/compare.py "${ENV[@]}" headroom=true "train_seeds=[$(seq -s, "${TRAIN[@]}")]" \
  "seeds=[$(seq -s, "${SCORED[@]}")]" 'baselines=[static,heuristic,grow_on_plateau]' reference=null \
  "schedule_grid.blueprints=[$BLUEPRINTS]" 'schedule_grid.slots=[each,all]' \
  "schedule_grid.families=[{$WATCH}]" schedule_grid.include_static=true "hydra.run.dir=$OUT/$RUN"
"$PYTHON" scripts/experiments/reprice_headroom.py --run "$OUT/$RUN" --param-price 0 5 10 20 30 40 60 \
  --out "$OUT/prices.csv"
