"""Re-price the growth probes' episodes (results/growth_probes_grid.csv) with an absolute parameter price and measure,
for every pair of probe hosts taken as the two equally likely episode kinds of one env, how far a context selector
(the best schedule per kind) gets above the single best schedule (SBS), and the per-episode best in hindsight (VBS).

objective = final accuracy − price · added parameters / 1000 (no compute price), so a seed costs the same on every
host, unlike the host-relative price of `tamiyo.env.objective`. The selector is scored two ways: in sample (chosen and
scored on all six tuning seeds) and split (chosen on three seeds, scored on the other three, both ways, averaged).

    python scripts/experiments/reprice_probes.py --out scripts/experiments/results/reprice_probes.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
from pathlib import Path

GRID = Path(__file__).parent / "results" / "growth_probes_grid.csv"
PROBES = (
    "stem host, depth 1, mnist1d", "stem host, depth 3, mnist1d", "stem host, depth 1, digits",
    "stem host, depth 3, digits", "stem host, depth 1, mnist1d, 400 training examples",
    "stem host, depth 1, digits, 150 training examples",
)
PRICES = (0, 2, 5, 10, 15, 20, 30, 40)

Episodes = dict[str, dict[str, dict[str, tuple[float, float]]]]  # probe → policy → seed → (accuracy, added params)


def load(path: Path) -> Episodes:
    episodes: Episodes = {}
    for row in csv.DictReader(path.open()):
        if row["probe"] in PROBES:
            by_policy = episodes.setdefault(row["probe"], {}).setdefault(row["policy"], {})
            by_policy[row["seed"]] = (float(row["final_accuracy"]), float(row["added_params"]))
    return episodes


def measure(episodes: Episodes, kinds: tuple[str, str], price: float) -> dict[str, object]:
    policies = sorted(set.intersection(*(set(episodes[k]) for k in kinds)))
    seeds = sorted(set.intersection(*(set(episodes[k][p]) for k in kinds for p in policies)))

    def objective(kind: str, policy: str, seed: str) -> float:
        accuracy, added = episodes[kind][policy][seed]
        return accuracy - price * added / 1000

    def mean(kind: str, policy: str, on: list[str]) -> float:
        return statistics.mean(objective(kind, policy, s) for s in on)

    def sbs(on: list[str]) -> str:
        return max(policies, key=lambda p: sum(mean(k, p, on) for k in kinds))

    def selector(on: list[str]) -> dict[str, str]:
        return {k: max(policies, key=lambda p: mean(k, p, on)) for k in kinds}

    def score(choice: dict[str, str], on: list[str]) -> float:
        return statistics.mean(mean(k, choice[k], on) for k in kinds)

    half = len(seeds) // 2
    splits = [(seeds[:half], seeds[half:]), (seeds[half:], seeds[:half])]
    split_gain = statistics.mean(score(selector(a), b) - score(dict.fromkeys(kinds, sbs(a)), b) for a, b in splits)
    best = sbs(seeds)
    vbs = statistics.mean(max(objective(k, p, s) for p in policies) for k in kinds for s in seeds)
    return {"kind_a": kinds[0], "kind_b": kinds[1], "price_per_1000_params": price, "sbs": best,
            "selector_a": selector(seeds)[kinds[0]], "selector_b": selector(seeds)[kinds[1]],
            "sbs_objective": round(score(dict.fromkeys(kinds, best), seeds), 2),
            "selector_minus_sbs_in_sample": round(score(selector(seeds), seeds) - score(dict.fromkeys(kinds, best),
                                                                                          seeds), 2),
            "selector_minus_sbs_split": round(split_gain, 2),
            "vbs_minus_selector_in_sample": round(vbs - score(selector(seeds), seeds), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=Path, default=GRID, help="the growth probes' episodes")
    parser.add_argument("--out", type=Path, required=True, help="CSV of every (kind pair, price)")
    args = parser.parse_args()
    episodes = load(args.grid)
    rows = [measure(episodes, kinds, price) for kinds in itertools.combinations(PROBES, 2) for price in PRICES]
    rows.sort(key=lambda r: -float(r["selector_minus_sbs_split"]))  # type: ignore[arg-type]
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows[:8]:
        print(f"{row['selector_minus_sbs_split']:>6} split, {row['selector_minus_sbs_in_sample']:>6} in sample, "
              f"VBS +{row['vbs_minus_selector_in_sample']}: {row['kind_a']} + {row['kind_b']} at "
              f"{row['price_per_1000_params']}/1000 params (SBS {row['sbs']})")


if __name__ == "__main__":
    main()
