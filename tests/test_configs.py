"""Every option combination composes and validates; bad values fail with one message naming the key."""

import itertools

import pytest
from conftest import ROOT, compose_config, compose_many
from omegaconf import OmegaConf

from rlcore.base.errors import ConfigError
from rlcore.config import schema_names, to_typed, typed_from_container


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml"))


def env_overrides(env: str) -> list[str]:
    return ["env.game=breakout"] if env == "atari" else []


def test_every_agent_env_net_combination_composes_and_validates():
    combos = list(itertools.product(options("agent"), options("env"), options("net")))
    assert len(combos) >= 3 * 8
    configs = compose_many([[f"agent={a}", f"env={e}", f"net={n}", *env_overrides(e)] for a, e, n in combos])
    for (agent, env, net), cfg in zip(combos, configs, strict=True):
        typed = to_typed(cfg)
        assert typed.agent.name == agent and typed.net.name == net, (agent, env, net)


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_composes(logger):
    typed = to_typed(compose_config([f"logger={logger}"]))
    assert typed.logger.name == logger


@pytest.mark.parametrize("env", options("env"))
def test_each_env_picks_its_default_net(env):
    expected = {"MNIST": "lenet5", "Digits": "mlp", "CartPole": "mlp", "CartPoleNoVel": "lstm", "Acrobot": "mlp", "MountainCar": "mlp"}
    typed = to_typed(compose_config(env_overrides(env) + [f"env={env}"]))
    assert typed.net.name == expected.get(env, "nature_cnn")


def test_default_is_dqn_on_cartpole_with_zoo_settings():
    typed = to_typed(compose_config([]))
    assert (typed.agent.name, typed.env.id, typed.net.name) == ("dqn", "CartPole-v1", "mlp")
    assert typed.agent.lr == pytest.approx(2.3e-3) and typed.net.hidden_sizes == [256, 256]
    assert typed.total_steps == 50_000


def test_command_line_beats_env_and_tuned_defaults():
    typed = to_typed(compose_config(["agent.lr=0.01", "net.hidden_sizes=[32]", "total_steps=123"]))
    assert typed.agent.lr == 0.01 and typed.net.hidden_sizes == [32] and typed.total_steps == 123


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.lr=-1", "'agent.lr': must be > 0"),
        ("agent.gamma=1.5", "'agent.gamma': must be in [0, 1]"),
        ("agent.batch_size=200000", "'agent.batch_size': 200000 is larger than agent.buffer_size"),
        ("device=gpu", "'device': got 'gpu'; allowed values: auto, cpu, cuda"),
        ("total_steps=0", "'total_steps': must be > 0"),
        ("env.id=NoSuchEnv-v0", "unknown Gymnasium environment 'NoSuchEnv-v0'"),
        ("logger.mode=sometimes", "'logger.mode': got 'sometimes'"),
    ],
)
def test_out_of_range_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        to_typed(compose_config([override]))
    assert message in str(info.value)


def test_wrong_types_and_unknown_keys_fail_at_composition():
    with pytest.raises(Exception, match="Error merging override agent.lr=abc"):
        compose_config(["agent.lr=abc"])
    with pytest.raises(Exception, match="Could not override 'agent.foo'"):
        compose_config(["agent.foo=1"])
    with pytest.raises(ConfigError, match="'agent.foo' is not a setting of DQNConfig; allowed keys: "):
        to_typed(compose_config(["+agent.foo=1"]))  # '+' appends past the schema: refused, not ignored
    with pytest.raises(Exception, match="Could not find 'env/NoSuchEnv'"):
        compose_config(["env=NoSuchEnv"])


def test_typed_config_round_trips_through_a_plain_dict():
    cfg = compose_config(["env=Acrobot", "seed=5"])
    cfg.run_dir = "/tmp/x"
    typed = to_typed(cfg)
    rebuilt = typed_from_container(OmegaConf.to_container(cfg, resolve=True), schema_names(typed))
    assert rebuilt == typed
