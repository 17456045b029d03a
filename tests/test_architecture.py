"""The structure docs/architecture.md promises: one agent registry that the orchestration asks, layers without
cycles, and no process-wide state changed at import or left behind by a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import torch
import yaml

from agents import AGENTS, SCHEMAS, agent_spec
from agents.dqn import DQNConfig
from rlcore.base.errors import ConfigError
from rlcore.config import to_typed
from rlcore.run import LOOPS, launch, run
from tests.conftest import ROOT, compose_config

TINY_DQN = [
    "total_steps=300",
    "agent.learning_starts=100",
    "eval_every=0",
    "final_eval_episodes=1",
    "logger.progress=false",
    "device=cpu",
]


def test_every_agent_option_file_has_a_registry_entry_and_a_loop():
    for path in sorted((ROOT / "configs" / "agent").glob("*.yaml")):
        defaults = yaml.safe_load(path.read_text())["defaults"]
        entry = next(d for d in defaults if isinstance(d, str) and d.startswith("/schema/agent/"))
        schema_name = entry.removeprefix("/schema/agent/").removesuffix("@_here_")
        spec = agent_spec(SCHEMAS[schema_name]())
        assert spec.loop in LOOPS, path.name
    assert {f"{spec.name}_schema" for spec in AGENTS} == set(SCHEMAS)


def test_a_variant_of_dqn_has_dqns_entry():
    typed = to_typed(compose_config(["agent=rainbow_lite"]))
    assert typed.agent.name == "rainbow_lite" and isinstance(typed.agent, DQNConfig)
    assert agent_spec(typed.agent).name == "dqn"


def test_an_unregistered_schema_is_refused_with_one_line():
    with pytest.raises(ConfigError, match="not a registered agent schema"):
        agent_spec(object())


@pytest.mark.parametrize("agent", ["dqn", "rainbow_lite"])
def test_checkpoint_replay_is_accepted_by_every_agent_with_a_replay(agent, tmp_path):
    """rainbow_lite is DQN with switches on: it has a replay, so checkpoint.replay=true must work as for dqn
    (it was refused with "has no replay buffer" when the check compared the agent's name with "dqn")."""
    overrides = [f"agent={agent}", "checkpoint.replay=true", f"run_dir={tmp_path}", *TINY_DQN]
    summary = run(compose_config(overrides), tmp_path)
    assert summary["total_steps"] == 300
    assert list((tmp_path / "checkpoints").glob("replay-*.pt")), "the replay was not saved with last.pt"


def test_checkpoint_replay_is_refused_for_an_agent_without_a_replay(tmp_path):
    cfg = compose_config(
        ["agent=supervised", "env=Digits", "net=mlp", "checkpoint.replay=true", f"run_dir={tmp_path}"]
    )
    with pytest.raises(ConfigError, match="checkpoint.replay': agent=supervised has no replay buffer"):
        run(cfg, tmp_path)
    assert not (tmp_path / "config.yaml").exists()


def test_the_packages_have_no_import_cycles_and_nets_imports_only_the_base():
    graph = grimp.build_graph("rlcore", "agents", "envs", "nets")
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            assert not graph.chain_exists(imported, module), f"import cycle through {module} and {imported}"
    outside = {m for m in graph.modules if not m.startswith(("nets", "rlcore.base")) and m != "rlcore"}
    for module in outside:
        assert not graph.chain_exists("nets", module), f"nets imports {module}"


def test_importing_the_packages_changes_no_process_state():
    script = (
        "import gymnasium as gym, matplotlib\n"
        "backend = matplotlib.get_backend()\n"
        "import torch; threads = torch.get_num_threads()\n"
        "import agents, envs, nets, rlcore.run, rlcore.report, rlcore.policy\n"
        "assert not any(k.startswith('rlcore/') for k in gym.registry), 'gym ids registered at import'\n"
        "assert matplotlib.get_backend() == backend, 'matplotlib backend switched at import'\n"
        "assert torch.get_num_threads() == threads\n"
        "envs.register_gym_ids()\n"
        "assert 'rlcore/CartPoleNoVel-v0' in gym.registry and 'rlcore/MNIST-v0' in gym.registry\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def _flushes_denormals() -> bool:
    return bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)


def test_a_run_puts_back_the_process_wide_torch_settings(tmp_path):
    threads = torch.get_num_threads()
    assert not _flushes_denormals()
    typed = to_typed(compose_config([f"run_dir={tmp_path}", "threads=1", "flush_denormal=true", *TINY_DQN]))
    seen: dict[str, object] = {}

    def spy(context, resume=None):  # the loop sees the run's settings ...
        context.begin(flush_denormal=True)
        seen.update(threads=torch.get_num_threads(), flush=_flushes_denormals())
        return {}

    original = LOOPS["off_policy"]
    LOOPS["off_policy"] = spy
    try:
        launch(typed, Path(tmp_path), {})
    finally:
        LOOPS["off_policy"] = original
    assert seen == {"threads": 1, "flush": True}
    assert torch.get_num_threads() == threads and not _flushes_denormals()  # ... and nothing outlives it


@pytest.mark.parametrize("args", [["--help"], ["agent.lr=-1"], ["agent.lrr=1"]])
def test_help_and_config_errors_import_no_torch(args):
    """Composing and validating a config needs the schemas only (agents.configs, nets.configs, envs): no torch."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{args!r}]\n"
        "try:\n"
        "    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('torch' in sys.modules, code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    torch_loaded, code = result.stdout.split()[-2:]
    assert torch_loaded == "False", result.stdout[-500:]
    assert code in ("0", "None") if args == ["--help"] else code in ("1", "2")


def test_a_checkpoint_written_before_the_dqn_drqn_split_still_loads():
    """Before DQN and DRQN were two modules, every DQN state dict carried DRQN's "hidden" and
    "pending_starts" (None for feed-forward nets); such a checkpoint loads into today's agents."""
    import gymnasium as gym
    import numpy as np

    from agents import BuildContext, make_agent
    from nets import MLPConfig

    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    context = BuildContext(
        net=MLPConfig(hidden_sizes=[8]),
        observation_space=space,
        action_space=gym.spaces.Discrete(2),
        device=torch.device("cpu"),
        seed=0,
        total_steps=100,
    )
    old = {**make_agent(DQNConfig(), context).state_dict(), "hidden": None, "pending_starts": None}
    fresh = make_agent(DQNConfig(), context)
    fresh.load_state_dict(old)
    for key, value in old["online"].items():
        assert torch.equal(fresh.online.state_dict()[key], value)


def test_help_and_option_lists_name_no_schema(capsys, monkeypatch):
    """The schemas sit in their own schema/<group> config groups: a group's option list is its real options."""
    import runpy

    for args, stream in ((["--help"], "out"), (["agent=nope"], "err")):
        monkeypatch.setattr(sys, "argv", ["train.py", *args])
        with pytest.raises(SystemExit):
            runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
        text = getattr(capsys.readouterr(), stream)
        assert "dqn" in text and "dqn_schema" not in text.split("schema/agent")[0], text[-1500:]
