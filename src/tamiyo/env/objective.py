"""What a controller is judged by: final validation accuracy minus a price for the parameters it added.

    objective = accuracy − param_weight · 100 · added / host

`accuracy` is the validation accuracy in percent, `added` the parameters of every seed present in
the network (live or fossilized, gates included) and `host` the host's own parameter count. The
price is linear in the *relative* growth, so one `param_weight` means the same on every host:
growing the network by one host's worth of parameters costs `100 · param_weight` accuracy points.
A log price (log(1 + added/host)) was rejected because it makes each further parameter cheaper, which
favours the largest seeds — the opposite of what a parameter budget is for.

Default `param_weight = 0.05`: doubling the network must buy at least 5 accuracy points. On the
default mnist1d task (690-parameter host; `scripts/experiments/objective_baselines.sh`: seeds 0–4, 25 epochs,
"grow as soon as legal" schedules) it ranks conv_light in all slots (62.6 %, +1,064 params) at 54.8,
conv_light in the last slot (58.9 %, +800) 53.1, conv_heavy in all slots (66.7 %, +2,128) 51.3,
conv_heavy in the last slot (62.1 %, +1,600) 50.5, conv_small in all slots (52.7 %, +392) 49.8, the
heuristic (52.0 %, +306) 49.7 and the static host 47.1: growth that buys many points still wins,
but a few more points for another host's worth of parameters do not. At 0 the objective is plain
accuracy; above about 0.11 no measured growth beats the static host (conv_heavy stops paying above
0.065).

The same function gives the running value of any state (`added` = seeds present at that epoch),
which is what the `objective` reward pays the change of.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_PARAM_WEIGHT = 0.05


@dataclass(frozen=True)
class Objective:
    param_weight: float = DEFAULT_PARAM_WEIGHT

    def __post_init__(self) -> None:
        if not (isinstance(self.param_weight, int | float) and math.isfinite(self.param_weight)
                and self.param_weight >= 0):
            raise ValueError(f"objective param_weight must be finite and ≥ 0, got {self.param_weight!r}")

    def price(self, added_params: float, host_params: int) -> float:
        """Accuracy points charged for `added_params` on a host of `host_params`."""
        if host_params < 1:
            raise ValueError(f"host_params must be ≥ 1, got {host_params}")
        if added_params < 0:
            raise ValueError(f"added_params must be ≥ 0, got {added_params}")
        return self.param_weight * 100.0 * added_params / host_params

    def __call__(self, accuracy: float, added_params: int, host_params: int) -> float:
        """The objective of a network with `accuracy` (%) and `added_params` on a `host_params` host."""
        return accuracy - self.price(added_params, host_params)
