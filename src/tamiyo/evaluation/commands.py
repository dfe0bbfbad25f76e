"""The evaluation and comparison commands: a Hydra config in, CSV + Markdown tables and pictures out.

`conf/evaluate.yaml` extends `conf/train.yaml`, so env, reward and policy options are written exactly
as for training. Keys of its own: `seeds` (a count n, meaning seeds 0..n-1, or a list of seeds),
`episodes` (per seed), `deterministic` (arg-max actions of a learned policy instead of sampling),
`progress`. `ckpt_path` names a training checkpoint (or `latest`: the newest `last.ckpt` of a single
training run under `paths.output_root/train/runs`; `latest_any` also counts multirun jobs). Every
table reports the objective of `objective.param_weight`.
`conf/compare.yaml` adds `baselines` (fixed policies, by name or by config, run next to the learned
one), `schedule_grid` and `train_seeds` (fixed schedules searched on training seeds, the best reported
on `seeds`), `static_final` (controllers whose final architectures are retrained from scratch as fixed
networks) and `reference` (the controller paired differences are taken to).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.progress import Progress

from tamiyo.conf import CONF_DIR
from tamiyo.core.atomic_io import atomic_write_text
from tamiyo.core.errors import ConfigError
from tamiyo.env.objective import Objective
from tamiyo.env.vector import VectorEnv, resolve_workers
from tamiyo.evaluation.checkpoint_env import resolve_checkpoint, with_checkpoint_env
from tamiyo.evaluation.comparison import (
    ControllerSummary,
    architecture_fossils,
    episode_kind_markdown,
    equal_compute_epochs,
    schedule_grid,
    summarise_controllers,
    summary_markdown,
    write_summary_csv,
)
from tamiyo.evaluation.headroom import best_schedule, headroom, headroom_markdown, write_headroom_csv
from tamiyo.evaluation.lifecycle import LifecycleTrace
from tamiyo.evaluation.metric_history import read_metrics_csv
from tamiyo.evaluation.plots import plot_compute, plot_learning_curve, plot_lifecycle, plot_pareto
from tamiyo.evaluation.pool import (
    LEARNED,
    EnvSpec,
    EpisodeJob,
    EpisodePool,
    JobCache,
    merged_lifecycle,
    run_jobs,
)
from tamiyo.evaluation.report import markdown_table, write_csv
from tamiyo.evaluation.runner import (
    EVAL_EPISODE_BASE,
    EpisodeResult,
    EvalPolicy,
    Evaluation,
    baseline_policy,
    check_fits,
    load_checkpoint_policy,
)
from tamiyo.policy.bundles.schedule import SchedulePolicyBundle
from tamiyo.policy.features import obs_dim
from tamiyo.policy.registry import policy_options

log = logging.getLogger("tamiyo")


def parse_seeds(value: object) -> list[int]:
    """`seeds=5` → [0, 1, 2, 3, 4]; `seeds=[3,7]` → [3, 7] (distinct integers ≥ 0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"seeds must be a count ≥ 1 or a list of seeds, got {value}")
        return list(range(value))
    if isinstance(value, (list, tuple, ListConfig)):
        seeds = list(value)
        valid = all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        if seeds and valid and len(set(seeds)) == len(seeds):
            return seeds
    raise ConfigError(f"seeds must be a count ≥ 1 or a list of distinct integers ≥ 0, got {value!r}")


def _validated(cfg: DictConfig) -> tuple[list[int], int]:
    # Not `validate_config`: its PPO-update rules (e.g. minibatches ≤ envs) do not apply here; bad env
    # values are refused when the env is built.
    episodes = cfg.episodes
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be an integer ≥ 1, got {episodes!r}")
    threads = cfg.torch_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"torch_threads must be an integer ≥ 1, got {threads!r}")
    torch.set_num_threads(cfg.torch_threads)
    return parse_seeds(cfg.seeds), episodes


def build_objective(cfg: DictConfig) -> Objective:
    try:
        return Objective(**OmegaConf.to_container(cfg.objective, resolve=True))
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def build_eval_env(cfg: DictConfig) -> VectorEnv:
    """The configured env (as training builds it, without autocast) with `env.num_envs` envs: the one every
    episode worker builds from `env_spec(cfg)`, here in this process."""
    spec = env_spec(cfg)
    try:
        workers = resolve_workers(spec.env.get("workers", 1), spec.env["num_envs"], cfg.torch_threads)
        env = VectorEnv(spec.tasks(), num_envs=spec.env["num_envs"], config=spec.env_config(), workers=workers)
        env.slot_config  # noqa: B018  (resolves the enabled slots now, so a bad slot id fails here)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"env/reward config: {error}") from error
    return env


def _baseline(cfg: DictConfig, name: str, options: dict, env: VectorEnv) -> EvalPolicy:
    try:
        policy = baseline_policy(name, options, env, obs_dim(env.slot_config.num_slots), cfg.ppo.obs_clip)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if isinstance(policy.bundle, SchedulePolicyBundle):  # a schedule is named by its settings
        policy = dataclasses.replace(policy, label=policy.bundle.describe())
    return policy


def _policy_group(name: str) -> tuple[str, dict]:
    """The policy and options of `conf/policy/<name>.yaml`, so a baseline here is the one `policy=<name>` trains
    (a file may configure another policy, e.g. a closed-loop rule that is a `schedule`)."""
    path = CONF_DIR / "policy" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown baseline {name!r}: no {path}")
    own = OmegaConf.load(path)
    own.pop("defaults")  # its options schema, merged in as composing `policy=<name>` would
    options = OmegaConf.to_container(OmegaConf.merge(policy_options(own.name), own), resolve=True)
    return options.pop("name"), options


def _policy_from_config(cfg: DictConfig, env: VectorEnv) -> tuple[EvalPolicy, Path | None]:
    ckpt = resolve_checkpoint(cfg)
    if ckpt is None:
        return _baseline(cfg, cfg.policy.name, _options(cfg.policy), env), None
    policy = load_checkpoint_policy(ckpt, deterministic=cfg.deterministic)
    if policy.name != cfg.policy.name:
        raise ConfigError(f"{ckpt} holds a {policy.label} policy, but policy={cfg.policy.name} was asked: "
                          f"pass policy={policy.name}, or a checkpoint of a policy={cfg.policy.name} run")
    return policy, ckpt


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    """A Rich progress bar over env-episode batches; a no-op advance when disabled."""
    if not enabled:
        yield lambda: None
        return
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=total)
        yield lambda: progress.advance(task)


def _env_name(env: DictConfig) -> str:
    """What the episodes play: the task(s), or the kinds the env names."""
    return f"kinds {', '.join(kind.name for kind in env.kinds)}" if env.get("kinds") else str(env.task)


def _caption(cfg: DictConfig, seeds: list[int], episodes: int, what: str, env_source: str,
             spread: str = "mean ± sample std over env-episodes (n).") -> str:
    env = cfg.env
    learned = cfg.ckpt_path is not None
    actions = f"learned actions {'arg-max' if cfg.deterministic else 'sampled'}; " if learned else ""
    return (
        f"{what} on {_env_name(env)} ({env_source}: {env.max_epochs} epochs per episode, {env.num_envs} env(s)); seeds "
        f"{', '.join(map(str, seeds))}; {episodes} episode(s) per seed (env episode indices from "
        f"{EVAL_EPISODE_BASE}, never used in training); {actions}{spread}"
    )


def _write_outputs(
    out_dir: Path, stem: str, results: list[EpisodeResult], caption: str, traces: dict[str, LifecycleTrace]
) -> Path:
    write_csv(results, out_dir / f"{stem}.csv")
    table = markdown_table(results, caption)
    atomic_write_text(out_dir / f"{stem}.md", table)
    for suffix, trace in traces.items():
        trace.save(out_dir / f"lifecycle{suffix}.json")
        plot_lifecycle(trace, out_dir / f"lifecycle{suffix}.png")
    print(table)
    print(f"wrote {out_dir / (stem + '.csv')} and {out_dir / (stem + '.md')}")
    return out_dir / f"{stem}.md"


def env_spec(cfg: DictConfig) -> EnvSpec:
    """What every episode worker builds its env from."""
    return EnvSpec(env=OmegaConf.to_container(cfg.env, resolve=True),
                   reward=OmegaConf.to_container(cfg.reward, resolve=True), gamma=float(cfg.ppo.gamma),
                   obs_clip=float(cfg.ppo.obs_clip), objective=build_objective(cfg))


def _job(policy: EvalPolicy, options: dict, seed: int, episodes: int, deterministic: bool) -> EpisodeJob:
    """The job of `policy` (a baseline built from `options`, or a checkpoint when `options` names `ckpt`)."""
    if "ckpt" in options:
        return EpisodeJob(policy.label, LEARNED, {**options, "deterministic": deterministic}, seed, episodes)
    return EpisodeJob(policy.label, policy.name, options, seed, episodes)


def _run(cfg: DictConfig, jobs: list[EpisodeJob], advance: Callable[[], None]) -> list[Evaluation]:
    try:
        pool = EpisodePool(cfg.episode_workers, cfg.episode_pool)
        cache = None if cfg.episode_cache is None else JobCache(Path(cfg.episode_cache))
    except ValueError as error:
        raise ConfigError(str(error)) from error
    env_workers = resolve_workers(cfg.env.get("workers", 1), cfg.env.num_envs, cfg.torch_threads)
    return run_jobs(env_spec(cfg), jobs, pool, cfg.torch_threads, env_workers, on_episode=advance, cache=cache)


def _per_seed(evaluations: list[Evaluation]) -> Evaluation:
    return Evaluation([r for e in evaluations for r in e.results], merged_lifecycle(evaluations))


def evaluate_command(cfg: DictConfig, overridden: Sequence[str] = ()) -> Path:
    """Evaluate one controller (a checkpoint or a baseline); returns the Markdown table's path. `overridden`: the
    keys and groups the command line sets, which decide what of a checkpoint's env they change (`checkpoint_env`)."""
    seeds, episodes = _validated(cfg)
    cfg, env_source = with_checkpoint_env(cfg, overridden)
    with closing(build_eval_env(cfg)) as env:  # checks the env and the controller before any episode runs
        policy, ckpt = _policy_from_config(cfg, env)
        check_fits(policy, env)
    options = {"ckpt": str(ckpt)} if ckpt is not None else _options(cfg.policy)
    jobs = [_job(policy, options, seed, episodes, cfg.deterministic) for seed in seeds]
    with _progress(cfg.progress, len(seeds) * episodes) as advance:
        evaluation = _per_seed(_run(cfg, jobs, advance))
    what = policy.label if ckpt is None else f"{policy.label} from {ckpt}"
    out_dir = Path(cfg.paths.output_dir)
    caption = _caption(cfg, seeds, episodes, what, env_source)
    return _write_outputs(out_dir, "evaluation", evaluation.results, caption,
                          {"": evaluation.lifecycle})


def _options(policy_cfg: DictConfig) -> dict:
    options = OmegaConf.to_container(policy_cfg, resolve=True)
    options.pop("name")
    return options


def _baseline_entries(cfg: DictConfig) -> dict[str, tuple[str, dict]]:
    """`baselines` as {name: (policy, options)}: a name stands for `conf/policy/<name>.yaml`; a mapping
    `{name: <policy>, <key>: <value>, …}` changes that file's options and is called `<policy>_<position>`
    in `static_final`, `reference` and file names (tables name it by its description)."""
    if not isinstance(cfg.baselines, ListConfig):
        raise ConfigError(f"baselines must be a list of policy names or policy configs, got {cfg.baselines!r}")
    entries: dict[str, tuple[str, dict]] = {}
    for position, entry in enumerate(cfg.baselines):
        if isinstance(entry, str):
            entries[entry] = _policy_group(entry)
            continue
        if not isinstance(entry, DictConfig) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"baselines entries are policy names or configs with a name, got {entry!r}")
        changed = {k: v for k, v in OmegaConf.to_container(entry, resolve=True).items() if k != "name"}
        policy, options = _policy_group(entry.name)
        entries[f"{entry.name}_{position}"] = (policy, {**options, **changed})
    return entries


# The controllers `static_final=auto` retrains the final architectures of, those of them the comparison has.
STATIC_FINAL_AUTO = ("heuristic", "schedule", "learned")


def _static_finals(cfg: DictConfig, names: list[str]) -> list[str]:
    """The controllers `static_final` names: a list of names, or `auto` (those of `STATIC_FINAL_AUTO` in `names`)."""
    value = cfg.static_final
    if value == "auto":
        return [name for name in STATIC_FINAL_AUTO if name in names]
    if not isinstance(value, ListConfig) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"static_final must be a list of names or auto, got {value!r}")
    return list(value)


# How tables name the grid's point that never grows (apart from a `static` baseline of the same comparison).
NO_GROWTH = "schedule: none (static)"


def _schedule_points(cfg: DictConfig, env: VectorEnv) -> list[tuple[str, dict]]:
    """The grid's (policy, options): not growing at all (with `schedule_grid.include_static`), then blueprint ×
    slots × family schedules, each with the settings `schedule_grid.options` and its family's (a family such as
    `{prune_dead: true}` is a closed-loop variant of every schedule)."""
    grid_cfg = cfg.schedule_grid
    defaults = _policy_group("schedule")[1]
    families = grid_cfg.families
    if not isinstance(families, ListConfig) or not families or not all(isinstance(f, DictConfig) for f in families):
        raise ConfigError(f"schedule_grid.families must be a non-empty list of schedule option sets, got {families!r}")
    blueprints = grid_cfg.blueprints
    try:
        points = schedule_grid(
            OmegaConf.to_container(blueprints) if isinstance(blueprints, ListConfig) else blueprints,
            OmegaConf.to_container(grid_cfg.slots) if isinstance(grid_cfg.slots, ListConfig) else grid_cfg.slots,
            env.topology, env.slot_config.slot_ids,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from error
    grid: list[tuple[str, dict]] = [("static", {})] if grid_cfg.include_static else []
    for family in families:
        changed = {**OmegaConf.to_container(grid_cfg.options, resolve=True),
                   **OmegaConf.to_container(family, resolve=True)}
        unknown = sorted(set(changed) - set(defaults))
        if unknown:
            raise ConfigError(f"schedule_grid options {unknown} are not schedule options {sorted(defaults)}")
        changed = {k: v for k, v in changed.items() if v != defaults.get(k)}
        grid += [("schedule", {**defaults, **changed, **point}) for point in points]
    return grid


def _plot_learning_curve(
    ckpt: Path, summaries: Sequence[ControllerSummary], learned: str | None, path: Path
) -> None:
    """The learned run's training curve (from the CSV log beside its checkpoint) with baseline lines."""
    metrics = ckpt.resolve().parent.parent / "csv" / "metrics.csv"
    if not metrics.is_file():
        print(f"no learning curve: {metrics} does not exist (the run was not logged with logger=csv)")
        return
    baselines = [(s.policy, s.objective_mean) for s in summaries if s.policy != learned]
    plot_learning_curve(read_metrics_csv(metrics), baselines, path)


def compare_command(cfg: DictConfig, overridden: Sequence[str] = ()) -> Path:
    """Every controller on the same held-out seeds; returns the Markdown table's path.

    Writes `comparison.csv` (one row per controller), `comparison.md`, `comparison_episodes.csv` (one
    row per env-episode), `comparison_pareto.png` (accuracy against added parameters),
    `comparison_compute.png` (accuracy against training GFLOPs), lifecycle pictures, with a schedule
    grid `schedule_grid.csv` (every schedule on the training seeds, and with `headroom` on the held-out
    seeds too, then also `headroom.{csv,md}`) and, with a learned checkpoint, `learning_curve.png` (its
    run's training curve with baseline lines). Episodes run in `episode_workers` processes.
    """
    seeds, episodes = _validated(cfg)
    cfg, env_source = with_checkpoint_env(cfg, overridden)
    baselines = _baseline_entries(cfg)
    names = [*baselines, *(["schedule"] if cfg.schedule_grid is not None else []),
             *(["learned"] if cfg.ckpt_path is not None else [])]
    finals = _static_finals(cfg, names)
    reference = cfg.reference
    if cfg.ckpt_path is None and "learned" in [reference, *finals]:
        raise ConfigError("ckpt_path is required: the comparison needs a learned checkpoint (or ckpt_path=latest); "
                          "without one, set reference and static_final to other controllers")
    if cfg.headroom and cfg.schedule_grid is None:
        raise ConfigError("headroom=true needs schedule_grid: the ladder is built from the schedules it holds")
    train_seeds = parse_seeds(cfg.train_seeds) if cfg.schedule_grid is not None else []
    if set(train_seeds) & set(seeds):
        raise ConfigError(f"train_seeds {train_seeds} and seeds {seeds} overlap: the schedule must be chosen on "
                          "seeds it is not judged on")
    unknown = [name for name in [*finals, reference] if name is not None and name not in names]
    if unknown:
        raise ConfigError(f"static_final and reference must name controllers of this comparison {names}, "
                          f"got {unknown}")
    with closing(build_eval_env(cfg)) as env:  # checks every controller against the env before any episode runs
        grid = _schedule_points(cfg, env) if cfg.schedule_grid is not None else []
        labels = [NO_GROWTH if policy == "static" else _baseline(cfg, policy, options, env).label
                  for policy, options in grid]
        policies = {name: _baseline(cfg, policy, options, env) for name, (policy, options) in baselines.items()}
        options = {name: options for name, (_, options) in baselines.items()}
        ckpt = None
        if cfg.ckpt_path is not None:
            policies["learned"], ckpt = _policy_from_config(cfg, env)
            check_fits(policies["learned"], env)
            options["learned"] = {"ckpt": str(ckpt)}
    objective = build_objective(cfg)
    out_dir = Path(cfg.paths.output_dir)
    grid_seeds = [*train_seeds, *(seeds if cfg.headroom else [])]
    scheduled = [len(grid) * len(grid_seeds), len(seeds) if grid and not cfg.headroom else 0]
    control_runs = len(finals) * (2 if cfg.static_final_equal_compute else 1)
    total = (sum(scheduled) + (len(policies) + control_runs) * len(seeds)) * episodes
    by_name: dict[str, Evaluation] = {}
    with _progress(cfg.progress, total) as advance:
        grid_jobs = [EpisodeJob(label, policy, point, seed, episodes)
                     for label, (policy, point) in zip(labels, grid, strict=True) for seed in grid_seeds]
        controller_jobs = [_job(policy, options[name], seed, episodes, cfg.deterministic)
                           for name, policy in policies.items() for seed in seeds]
        evaluations = _run(cfg, grid_jobs + controller_jobs, advance)
        searched = [r for e in evaluations[:len(grid_jobs)] for r in e.results]
        for index, name in enumerate(policies):
            by_name[name] = _per_seed(evaluations[len(grid_jobs) + index * len(seeds):][:len(seeds)])
        if grid:
            in_train = [r for r in searched if r.seed in train_seeds]
            write_csv(searched, out_dir / "schedule_grid.csv")
            best = labels.index(best_schedule(in_train))
            if cfg.headroom:
                held_out = [e for job, e in zip(grid_jobs, evaluations[:len(grid_jobs)], strict=True)
                            if job.label == labels[best] and job.seed in seeds]
                by_name["schedule"] = _per_seed(held_out)
            else:
                jobs = [EpisodeJob(labels[best], *grid[best], seed, episodes) for seed in seeds]
                by_name["schedule"] = _per_seed(_run(cfg, jobs, advance))
        by_name = {name: by_name[name] for name in names}
        results = [r for evaluation in by_name.values() for r in evaluation.results]
        labels_of = {name: evaluation.results[0].policy for name, evaluation in by_name.items()}
        grown = [r for name in finals for r in by_name[name].results]
        final_jobs = [EpisodeJob(f"static-final: {r.policy}", "static", {}, r.seed, 1, r.episode,
                                 architecture_fossils(r.architecture), r.env) for r in grown]
        controls = [r for e in _run(cfg, final_jobs, advance) for r in e.results] if final_jobs else []
        results += controls
        if cfg.static_final_equal_compute and controls:
            results += _equal_compute_controls(cfg, grown, controls, objective, advance)
    traces = {f"_{name}": evaluation.lifecycle for name, evaluation in by_name.items()}
    if cfg.headroom:
        _write_headroom(cfg, searched, train_seeds, [r for n in names if n != "schedule" for r in by_name[n].results],
                        objective, out_dir)
    reference_label = None if reference is None else labels_of[reference]
    summaries = summarise_controllers(results, reference_label)
    write_csv(results, out_dir / "comparison_episodes.csv")
    write_summary_csv(summaries, out_dir / "comparison.csv")
    chosen = f"; the schedule was chosen among {len(grid)} on training seeds {train_seeds}" if grid else ""
    learned_text = f" (learned: {ckpt})" if ckpt is not None else ""
    spread = (f"{objective.describe()}{chosen}; ± is the "
              "95 % t interval of the mean; differences are paired by (seed, episode, env).")
    caption = _caption(cfg, seeds, episodes, f"{len(summaries)} controllers{learned_text}", env_source, spread=spread)
    table = summary_markdown(summaries, caption, reference_label) + episode_kind_markdown(results)
    (out_dir / "comparison.md").write_text(table)
    points = [(s.policy, s.added_params_mean, s.accuracy_mean) for s in summaries]
    hosts = {r.host_params for r in results}
    plot_pareto(points, objective.param_weight, hosts.pop() if len(hosts) == 1 else None,
                out_dir / "comparison_pareto.png")
    by_controller: dict[str, list[tuple[float, float]]] = {}
    for result in results:
        by_controller.setdefault(result.policy, []).append((result.train_gflops, result.final_accuracy))
    plot_compute(by_controller, out_dir / "comparison_compute.png")
    if ckpt is not None:
        _plot_learning_curve(ckpt, summaries, reference_label, out_dir / "learning_curve.png")
    for suffix, trace in traces.items():
        trace.save(out_dir / f"lifecycle{suffix}.json")
        plot_lifecycle(trace, out_dir / f"lifecycle{suffix}.png")
    print(table)
    print(f"wrote {out_dir / 'comparison.csv'} and {out_dir / 'comparison.md'}")
    return out_dir / "comparison.md"


def _equal_compute_controls(cfg: DictConfig, grown: list[EpisodeResult], controls: list[EpisodeResult],
                            objective: Objective, advance: Callable[[], None]) -> list[EpisodeResult]:
    """Each grown episode's final architecture trained from scratch for as many epochs as the grown episode's
    training FLOPs pay for (`equal_compute_epochs`, from its full-length control), charged the grown episode's
    compute: at the same compute and the same parameters, is the grown network better?"""
    max_epochs = int(cfg.env.max_epochs)
    jobs = [EpisodeJob(f"static-final, equal compute: {r.policy}", "static", {}, r.seed, 1, r.episode,
                       architecture_fossils(r.architecture), r.env, equal_compute_epochs(r, c, max_epochs))
            for r, c in zip(grown, controls, strict=True)]
    evaluations = _run(cfg, jobs, advance)
    return [dataclasses.replace(c, extra_compute=r.extra_compute,
                                objective=objective(c.final_accuracy, c.added_params, c.host_params, r.extra_compute))
            for r, e in zip(grown, evaluations, strict=True) for c in e.results]


def _write_headroom(cfg: DictConfig, searched: list[EpisodeResult], train_seeds: list[int],
                    controllers: list[EpisodeResult], objective: Objective, out_dir: Path) -> None:
    """headroom.csv and headroom.md from the grid on both seed sets and the other controllers' episodes."""
    chosen_on = [r for r in searched if r.seed in train_seeds]
    report = headroom(chosen_on, [r for r in searched if r.seed not in train_seeds], controllers)
    write_headroom_csv(report, out_dir / "headroom.csv")
    caption = (f"Headroom on {_env_name(cfg.env)} ({cfg.env.max_epochs} epochs per episode): {report.schedules} "
               f"schedules, every choice made on training seeds {report.train_seeds}, scored on held-out seeds "
               f"{report.seeds} ({cfg.episodes} episode(s) each); {objective.describe()}; ± is the 95 % t interval; "
               "gap closed = (controller − SBS) / (VBS − SBS).")
    table = headroom_markdown(report, caption)
    atomic_write_text(out_dir / "headroom.md", table)
    print(table)
    print(f"wrote {out_dir / 'headroom.csv'} and {out_dir / 'headroom.md'}")
