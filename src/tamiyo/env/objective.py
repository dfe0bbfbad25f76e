"""What a controller is judged by: final validation accuracy minus a price for the parameters it added
and, optionally, for the training compute it spent beyond the static host's.

    objective = accuracy − param_weight · 100 · added / host − param_price · added / 1000
                − compute_weight · 100 · extra_compute

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

`extra_compute` is the episode's training FLOPs (forward and backward, every epoch's host and running
seeds) minus what the static host alone spends over the same epochs, as a fraction of the static host's
training FLOPs over the whole episode: a seed that doubles the network's compute costs 1.0 when it runs
from the first epoch and 0.5 when it is planted halfway. The parameter price sees only the final network,
so "plant the best seed as early as possible" is then optimal; the compute price makes *when* to grow a
trade-off — an early seed has longer to learn and costs more. `compute_weight` 0 (the default) leaves it out.

`param_price` is an absolute price: accuracy points per 1,000 added parameters, the same on every host (a fixed
memory budget rather than a share of the host). The relative price charges a small host the most for the growth
it needs most, so on envs whose episodes draw hosts of very different sizes it makes every kind of episode want
the same cheap seed (scripts/experiments/adaptive_benchmark.md, sections 7-8); the absolute price lets a large
host refuse a seed that a small one should take. 0 (the default) leaves it out.

The same function gives the running value of any state (`added` = seeds present at that epoch, the
compute spent so far), which is what the `objective` reward pays the change of.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_PARAM_WEIGHT = 0.05


@dataclass(frozen=True)
class Objective:
    param_weight: float = DEFAULT_PARAM_WEIGHT
    compute_weight: float = 0.0
    param_price: float = 0.0

    def __post_init__(self) -> None:
        for name in ("param_weight", "compute_weight", "param_price"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0):
                raise ValueError(f"objective {name} must be finite and ≥ 0, got {value!r}")

    def describe(self) -> str:
        """The formula, for table captions."""
        absolute = f" − {self.param_price} · added params/1000" if self.param_price else ""
        compute = f" − {self.compute_weight} · 100 · extra compute" if self.compute_weight else ""
        return f"objective = final val acc − {self.param_weight} · 100 · added/host params{absolute}{compute}"

    def price(self, added_params: float, host_params: int) -> float:
        """Accuracy points charged for `added_params` on a host of `host_params`."""
        if host_params < 1:
            raise ValueError(f"host_params must be ≥ 1, got {host_params}")
        if added_params < 0:
            raise ValueError(f"added_params must be ≥ 0, got {added_params}")
        return self.param_weight * 100.0 * added_params / host_params + self.param_price * added_params / 1000.0

    def compute_price(self, extra_compute: float) -> float:
        """Accuracy points charged for `extra_compute` (FLOPs beyond the static host's, as a fraction of its
        whole episode's)."""
        if not extra_compute >= 0:
            raise ValueError(f"extra_compute must be ≥ 0, got {extra_compute}")
        return self.compute_weight * 100.0 * extra_compute

    def __call__(self, accuracy: float, added_params: int, host_params: int, extra_compute: float = 0.0) -> float:
        """The objective of a network with `accuracy` (%) and `added_params` on a `host_params` host, trained
        with `extra_compute` beyond the static host's."""
        return accuracy - self.price(added_params, host_params) - self.compute_price(extra_compute)
