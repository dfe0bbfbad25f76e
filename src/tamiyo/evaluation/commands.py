"""The evaluation and comparison commands: a Hydra config in, CSV + Markdown tables and pictures out.

`conf/evaluate.yaml` extends `conf/train.yaml`, so env, reward and policy options are written exactly
as for training. Keys of its own: `seeds` (a count n, meaning seeds 0..n-1, or a list of seeds),
`episodes` (per seed), `deterministic` (arg-max actions of a learned policy instead of sampling),
`progress`. `ckpt_path` names a training checkpoint (or `latest`: the newest `last.ckpt` of a training
run under `paths.output_root/train`). `conf/compare.yaml` adds `baselines` (fixed policies to run next
to the learned one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.progress import Progress

from tamiyo.conf import CONF_DIR
from tamiyo.core.errors import ConfigError
from tamiyo.env.config import build_env_config
from tamiyo.env.tasks import make_task
from tamiyo.env.vector import VectorEnv, resolve_workers
from tamiyo.evaluation.report import markdown_table, write_csv
from tamiyo.evaluation.runner import (
    EVAL_EPISODE_BASE,
    EpisodeResult,
    EvalPolicy,
    baseline_policy,
    evaluate,
    load_checkpoint_policy,
)
from tamiyo.evaluation.lifecycle import LifecycleTrace
from tamiyo.evaluation.plots import plot_lifecycle
from tamiyo.policy.features import obs_dim
from tamiyo.training.checkpoints import latest_checkpoint

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


def build_eval_env(cfg: DictConfig) -> VectorEnv:
    """The configured env (as training builds it, without autocast) with `env.num_envs` envs."""
    env_cfg = OmegaConf.to_container(cfg.env, resolve=True)
    reward_cfg = OmegaConf.to_container(cfg.reward, resolve=True)
    try:
        task = make_task(env_cfg["task"], **dict(env_cfg.get("task_options") or {}))
        config = build_env_config(env_cfg, reward_cfg, cfg.ppo.gamma, autocast_dtype=None)
        workers = resolve_workers(env_cfg.get("workers", 1), env_cfg["num_envs"], cfg.torch_threads)
        env = VectorEnv(task, num_envs=env_cfg["num_envs"], config=config, workers=workers)
        env.slot_config  # noqa: B018  (resolves the enabled slots now, so a bad slot id fails here)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"env/reward config: {error}") from error
    return env


def resolve_checkpoint(cfg: DictConfig) -> Path | None:
    if cfg.ckpt_path is None:
        return None
    if cfg.ckpt_path == "latest":
        return latest_checkpoint(Path(cfg.paths.output_root), "train")
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path: no such checkpoint file {path}")
    return path


def _baseline(cfg: DictConfig, name: str, options: dict, env: VectorEnv) -> EvalPolicy:
    try:
        return baseline_policy(name, options, env, obs_dim(env.slot_config.num_slots), cfg.ppo.obs_clip)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _policy_group_options(name: str) -> dict:
    """The options of `conf/policy/<name>.yaml`, so a baseline here is the one `policy=<name>` trains."""
    path = CONF_DIR / "policy" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown baseline {name!r}: no {path}")
    options = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    options.pop("name", None)
    return options


def _policy_from_config(cfg: DictConfig, env: VectorEnv) -> tuple[EvalPolicy, Path | None]:
    ckpt = resolve_checkpoint(cfg)
    if ckpt is None:
        options = OmegaConf.to_container(cfg.policy, resolve=True)
        return _baseline(cfg, options.pop("name"), options, env), None
    policy = load_checkpoint_policy(ckpt, deterministic=cfg.deterministic)
    if policy.name != cfg.policy.name:
        raise ConfigError(f"ckpt_path holds a {policy.label} policy, but policy={cfg.policy.name} was asked")
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


def _caption(cfg: DictConfig, seeds: list[int], episodes: int, what: str) -> str:
    env = cfg.env
    return (
        f"{what} on {env.task} ({env.max_epochs} epochs per episode, {env.num_envs} env(s)); seeds "
        f"{', '.join(map(str, seeds))}; {episodes} episode(s) per seed (env episode indices from "
        f"{EVAL_EPISODE_BASE}, never used in training); learned actions "
        f"{'arg-max' if cfg.deterministic else 'sampled'}; mean ± sample std over env-episodes (n)."
    )


def _write_outputs(
    out_dir: Path, stem: str, results: list[EpisodeResult], caption: str, traces: dict[str, LifecycleTrace]
) -> Path:
    write_csv(results, out_dir / f"{stem}.csv")
    table = markdown_table(results, caption)
    (out_dir / f"{stem}.md").write_text(table)
    for suffix, trace in traces.items():
        trace.save(out_dir / f"lifecycle{suffix}.json")
        plot_lifecycle(trace, out_dir / f"lifecycle{suffix}.png")
    print(table)
    print(f"wrote {out_dir / (stem + '.csv')} and {out_dir / (stem + '.md')}")
    return out_dir / f"{stem}.md"


def evaluate_command(cfg: DictConfig) -> Path:
    """Evaluate one controller (a checkpoint or a baseline); returns the Markdown table's path."""
    seeds, episodes = _validated(cfg)
    env = build_eval_env(cfg)
    policy, ckpt = _policy_from_config(cfg, env)
    with _progress(cfg.progress, len(seeds) * episodes) as advance:
        evaluation = evaluate(policy, env, seeds, episodes, on_episode=advance)
    what = policy.label if ckpt is None else f"{policy.label} from {ckpt}"
    out_dir = Path(cfg.paths.output_dir)
    return _write_outputs(out_dir, "evaluation", evaluation.results, _caption(cfg, seeds, episodes, what),
                          {"": evaluation.lifecycle})


def compare_command(cfg: DictConfig) -> Path:
    """Baselines and the learned checkpoint on the same seeds and env; returns the Markdown table's path."""
    seeds, episodes = _validated(cfg)
    if cfg.ckpt_path is None:
        raise ConfigError("ckpt_path is required: the comparison needs a learned checkpoint (or ckpt_path=latest)")
    env = build_eval_env(cfg)
    if not isinstance(cfg.baselines, ListConfig):
        raise ConfigError(f"baselines must be a list of policy names, got {cfg.baselines!r}")
    learned, ckpt = _policy_from_config(cfg, env)
    policies = [_baseline(cfg, name, _policy_group_options(name), env) for name in cfg.baselines] + [learned]
    results: list[EpisodeResult] = []
    traces: dict[str, LifecycleTrace] = {}
    with _progress(cfg.progress, len(policies) * len(seeds) * episodes) as advance:
        for policy in policies:
            evaluation = evaluate(policy, env, seeds, episodes, on_episode=advance)
            results += evaluation.results
            traces["_learned" if policy is learned else f"_{policy.name}"] = evaluation.lifecycle
    caption = _caption(cfg, seeds, episodes, f"{', '.join(p.label for p in policies)} (learned: {ckpt})")
    return _write_outputs(Path(cfg.paths.output_dir), "comparison", results, caption, traces)
