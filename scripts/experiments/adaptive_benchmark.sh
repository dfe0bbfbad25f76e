#!/usr/bin/env bash
# The headroom of env=adaptive on held-out seeds 7000-7039: the grid of conf/benchmark/adaptive.yaml chosen on its
# training seeds 1000-1019, the context selector, the per-episode best, and the baselines (static, heuristic, the
# hand-written closed-loop rule). Resumable: every finished job is kept in the episode cache, so the same command
# after a kill or a timeout continues (run it in chunks of at most 45 minutes: `timeout 45m …`).
#   nohup scripts/experiments/adaptive_benchmark.sh > bench/adaptive.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root: scripts/compare.py and bench/ are relative to it
PYTHON=${PYTHON:-python}
OUT=${OUT:-bench/adaptive}
mkdir -p "$OUT"
"$PYTHON" scripts/compare.py env=adaptive headroom=true "seeds=[$(seq -s, 7000 7039)]" \
  'baselines=[static,heuristic,grow_on_plateau]' 'static_final=[]' reference=null progress=false \
  "episode_cache=$OUT/cache" "hydra.run.dir=$OUT/report" "$@"
