"""Episode kinds named by `env.kinds`: each episode draws a task, task options, host and width together."""

import pytest

from tamiyo.core.actions import FactoredAction
from tamiyo.core.observation import ObservationBatch
from tamiyo.env.blueprints import count_params
from tamiyo.env.config import EnvConfig, EnvOptions
from tamiyo.env.gym_env import SeedLifecycleEnv
from tamiyo.env.hosts import build_host, stem_host
from tamiyo.env.kinds import load_tasks
from tamiyo.env.objective import Objective
from tamiyo.env.seed_env import SeedEnv
from tamiyo.env.tasks import make_task
from tamiyo.env.vector import VectorEnv
from tamiyo.evaluation.comparison import episode_kind_markdown
from tamiyo.evaluation.runner import baseline_policy, evaluate
from tamiyo.policy import obs_dim
from tamiyo.policy.features import extract_features, kind_feature_index

STEM = "tamiyo.env.hosts.stem_host"
KINDS = [
    {"name": "deep", "task": "digits", "host": {"_target_": STEM, "depth": 3}},
    {"name": "shallow_small", "task": "digits", "task_options": {"train_subset": 40},
     "host": {"_target_": STEM, "depth": 1}},
    {"name": "mnist1d_narrow", "task": "mnist1d", "host_width": 0.5},
]
TASK_OPTIONS = {"train_subset": 96, "val_subset": 48}


def test_each_kind_loads_its_task_with_the_envs_options_updated_by_its_own():
    tasks = load_tasks("mnist1d", TASK_OPTIONS, KINDS)
    assert [(t.name, len(t.train_x), len(t.val_x)) for t in tasks] == [
        ("digits", 96, 48), ("digits", 40, 48), ("mnist1d", 96, 48)]
    assert load_tasks("digits", TASK_OPTIONS, None).name == "digits"  # no kinds: the env's task


def test_episodes_draw_every_kind_reproducibly_with_its_data_host_and_width():
    config = EnvConfig(max_epochs=1, kinds=KINDS, auto_advance=False)
    tasks = load_tasks("mnist1d", TASK_OPTIONS, KINDS)
    env = SeedEnv(tasks, config, env_index=2)
    drawn = []
    for episode in range(12):
        signals, _ = env.reset(seed=5, episode=episode)
        drawn.append(env.kind.name)
        expected = {"deep": stem_host(tasks[0], 1.0, depth=3), "shallow_small": stem_host(tasks[1], 1.0, depth=1),
                    "mnist1d_narrow": build_host(tasks[2], 0.5)}[env.kind.name]
        assert signals.host_params == count_params(expected)  # the kind's host, told apart by its size
        assert len(env._train_x) == {"deep": 96, "shallow_small": 40, "mnist1d_narrow": 96}[env.kind.name]
    assert set(drawn) == {"deep", "shallow_small", "mnist1d_narrow"}
    again = SeedEnv(tasks, config, env_index=2)
    again.reset(seed=5, episode=7)
    assert again.step(FactoredAction.wait()).info["kind"] == drawn[7]


def test_kinds_that_share_host_and_input_are_told_apart_by_the_kind_column():
    twins = [{"name": "near", "task": "ordered_pairs", "task_options": {"gap": 2}},
             {"name": "far", "task": "ordered_pairs", "task_options": {"gap": 14}}]
    config = EnvConfig(max_epochs=1, kinds=twins, auto_advance=False)
    env = SeedEnv(load_tasks("mnist1d", TASK_OPTIONS, twins), config)
    seen: dict[str, set[tuple[int, float]]] = {"near": set(), "far": set()}
    for episode in range(8):
        signals, slots = env.reset(seed=1, episode=episode)
        features = extract_features(ObservationBatch.pack([signals], [slots]))[0]
        seen[env.kind.name].add((signals.host_params, features[kind_feature_index(3)].item()))
    assert len({host for host, _ in seen["near"] | seen["far"]}) == 1  # one host: its size cannot tell them
    assert ({column for _, column in seen["near"]}, {column for _, column in seen["far"]}) == ({0.0}, {1.0})


def test_evaluation_rows_and_tables_carry_the_kind():
    config = EnvConfig(max_epochs=2, kinds=KINDS, auto_advance=False)
    env = VectorEnv("mnist1d", num_envs=1, config=config, task_options=TASK_OPTIONS)
    policy = baseline_policy("static", {}, env, obs_dim(env.slot_config.num_slots), 5.0)
    results = evaluate(policy, env, list(range(6)), 1, Objective()).results
    assert {r.kind for r in results} == {"deep", "shallow_small", "mnist1d_narrow"}
    assert {(r.kind, r.task, r.host_width) for r in results} <= {
        ("deep", "digits", 1.0), ("shallow_small", "digits", 1.0), ("mnist1d_narrow", "mnist1d", 0.5)}
    lines = episode_kind_markdown(results).splitlines()
    header = next(line for line in lines if line.startswith("| controller"))
    assert sorted(header.strip("| ").split(" | ")[1:]) == ["deep", "mnist1d_narrow", "shallow_small"]
    row = next(line for line in lines if line.startswith("| static"))
    assert sum(int(cell.split("(")[1].rstrip(")")) for cell in row.strip("| ").split(" | ")[1:]) == 6


def test_the_gym_env_takes_kinds_like_training():
    gym = SeedLifecycleEnv("mnist1d", kinds=KINDS, max_epochs=1, train_subset=96, val_subset=48)
    kinds = set()
    for seed in range(6):
        gym.reset(seed=seed)
        kinds.add(gym.core.kind.name)
    assert len(kinds) >= 2 and gym.slot_config.slot_ids == ("r0c0", "r0c1", "r0c2")


def test_kinds_whose_hosts_have_other_injection_points_cannot_share_an_env():
    kinds = [{"name": "conv", "task": "mnist1d"},
             {"name": "lm", "task": "pysource", "task_options": {"context_length": 8}}]
    tasks = load_tasks("mnist1d", {"train_subset": 8, "val_subset": 8}, kinds)
    with pytest.raises(ValueError, match="tasks 'mnist1d' and 'pysource' cannot share an env"):
        SeedEnv(tasks, EnvConfig(kinds=kinds))


@pytest.mark.parametrize(("options", "message"), [
    ({"kinds": []}, r"^env.kinds must be null or a non-empty list of mappings, got \[\]$"),
    ({"kinds": [{"name": "a"}, {"name": "a"}]},
     r"^env.kinds\[1\] needs a name of its own \(a non-empty string, unique\), got 'a'$"),
    ({"kinds": [{"task": "digits"}]}, r"^env.kinds\[0\] needs a name of its own .*, got None$"),
    ({"kinds": [{"name": "a", "width": 2}]},
     r"^env.kinds\[0\] has unknown keys \['width'\]; a kind sets \['name', 'task', 'task_options', 'host', "
     r"'host_width'\]$"),
    ({"kinds": [{"name": "a", "host_width": 0}]}, r"^env.kinds\[0\] \(a\): host_width must be a number > 0, got 0$"),
    ({"kinds": [{"name": "a", "task": ["mnist1d", "digits"]}]}, r"^env.kinds\[0\] \(a\): task must be one task"),
    ({"kinds": [{"name": "a", "host": "stem"}]},
     r"^env.kinds\[0\] \(a\): host must be null or a mapping with a _target_, got 'stem'$"),
    ({"task": ["mnist1d", "digits"], "kinds": [{"name": "a"}]},
     r"^env.kinds\[0\] \(a\) names no task and env.task is a list; give the kind its task$"),
    ({"host_widths": [0.5, 1.0], "kinds": [{"name": "a"}]},
     r"^env.kinds and several env.host_widths \[0.5, 1.0\] exclude each other; give each kind its host_width$"),
])
def test_bad_kinds_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        EnvOptions(**options)


def test_stem_host_convolves_only_its_first_stages():
    task = make_task("digits", train_subset=8, val_subset=8)
    shallow, deep = stem_host(task, depth=1), stem_host(task, depth=3)
    assert [p.channels for p in deep.injection_points] == [16, 16, 16]
    assert count_params(shallow) < count_params(deep)
    assert sum(1 for m in shallow.modules() if m.__class__.__name__ == "Conv2d") == 1
    with pytest.raises(ValueError, match="^stem_host depth must be 1, 2 or 3, got 4$"):
        stem_host(task, depth=4)
    normalised = stem_host(task, depth=1, normalised=True)
    assert [type(m).__name__ for m in normalised.blocks[0]] == ["Conv2d", "GroupNorm", "ReLU", "MaxPool2d"]
    assert count_params(normalised) == count_params(shallow) + 2 * 16  # one scale and shift per channel
    assert [type(m).__name__ for m in normalised.blocks[1]] == ["MaxPool2d"]
    with pytest.raises(ValueError, match="^stem_host normalised must be true or false, got 'yes'$"):
        stem_host(task, normalised="yes")
