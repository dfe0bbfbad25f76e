#!/usr/bin/env bash
# The fixed controllers on the default task, judged by the objective: seeds 0–4, one 25-epoch episode
# of one env per seed, through `scripts/evaluate.py` (one evaluation.csv/.md per controller under
# bench/objective_baselines/<name>/). Extra arguments are passed to every evaluation, e.g.
# `objective.param_weight=0.02`.
#   nohup scripts/experiments/objective_baselines.sh > bench/objective_baselines.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout root: scripts/evaluate.py and bench/ are relative to it
PYTHON=${PYTHON:-python}
OUT=bench/objective_baselines
run() {
  local name=$1; shift
  "$PYTHON" scripts/evaluate.py seeds=5 env.num_envs=1 progress=false "hydra.run.dir=$OUT/$name" "$@" "${EXTRA[@]}"
}
EXTRA=("$@")
run static policy=static
run heuristic policy=heuristic
run conv_small_all policy=schedule policy.blueprint=conv_small policy.slots=all
run conv_light_r0c2 policy=schedule policy.blueprint=conv_light "policy.slots=[r0c2]"
run conv_heavy_r0c2 policy=schedule policy.blueprint=conv_heavy "policy.slots=[r0c2]"
run conv_light_all policy=schedule policy.blueprint=conv_light policy.slots=all
run conv_heavy_all policy=schedule policy.blueprint=conv_heavy policy.slots=all
