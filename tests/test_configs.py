"""Every option combination composes and validates; bad values fail with one message naming the key."""

import re

import pytest
from conftest import ROOT, compose_config, compose_many
from omegaconf import OmegaConf

from rlcore.base.errors import ConfigError
from rlcore.config import schema_names, to_typed, typed_from_container


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml"))


def env_overrides(env: str) -> list[str]:
    return ["env.game=breakout"] if env == "atari" else []


def default_net(env: str) -> str:
    expected = {
        "MNIST": "lenet5",
        "Digits": "mlp",
        "CartPole": "mlp",
        "CartPoleNoVel": "lstm",
        "Acrobot": "mlp",
        "MountainCar": "mlp",
    }
    return expected.get(env, "nature_cnn")


def env_family(env: str) -> str:
    """The schema an env option starts from (classic_schema, atari_schema, dataset_schema)."""
    text = (ROOT / "configs" / "env" / f"{env}.yaml").read_text()
    return re.search(r"^\s*-\s*/schema/env/(\w+_schema)@_here_\s*$", text, re.MULTILINE).group(1)


def combinations() -> list[tuple[str, str, str | None]]:
    """(agent, env, net or None = the env's default net) to compose: every option file, every file of
    configs/tuned and configs/tuned_net, and every pair of options that can interact, not all products.

    A composed config is the agent, env, net and logger files plus the optional ``tuned/<agent>_<env>``
    ``tuned_net/<env>_<net>`` and ``tuned_agent_net/<agent>_<env>_<net>`` files (configs/config.yaml); the schemas are per group. So what can fail is
    one option file, an agent x env pair (its tuned file, an env's net override under each agent), an
    agent x net pair (DRQN for recurrent nets, the net schemas under each agent) and the env x net pairs
    that have a tuned_net file. The 416 agent x env x net products (~100 s) repeat those pairs many times;
    these ~110 cover every one of them:
    * every agent x every env with the env's default net (each tuned/ file, each env's default net);
    * every agent x every net on CartPole;
    * every net on one env of each env family (schema): atari, classic control, datasets;
    * every tuned_net/<env>_<net> file's pair and every tuned_agent_net/<agent>_<env>_<net> file's triple.
    """
    agents, envs, nets = options("agent"), options("env"), options("net")
    combos: list[tuple[str, str, str | None]] = [(a, e, None) for a in agents for e in envs]
    combos += [(a, "CartPole", n) for a in agents for n in nets]
    one_per_family = {env_family(e): e for e in reversed(envs)}  # the first env of each family
    combos += [("dqn", e, n) for e in sorted(one_per_family.values()) for n in nets]
    for pair in options("tuned_net"):
        env, net = pair.rsplit("_", 1)
        assert env in envs and net in nets, f"configs/tuned_net/{pair}.yaml names no env x net pair"
        combos.append(("dqn", env, net))
    for triple in options("tuned_agent_net"):
        agent, env, net = triple.rsplit("_", 2)
        assert agent in agents and env in envs and net in nets, (
            f"configs/tuned_agent_net/{triple}.yaml names no agent x env x net"
        )
        combos.append((agent, env, net))
    return list(dict.fromkeys(combos))


def test_every_option_and_option_pair_composes_and_validates():
    combos = combinations()
    assert len(combos) >= 3 * 8
    assert {env_family(e) for e in options("env")} == {"classic_schema", "atari_schema", "dataset_schema"}
    configs = compose_many(
        [[f"agent={a}", f"env={e}", *([f"net={n}"] if n else []), *env_overrides(e)] for a, e, n in combos]
    )
    for (agent, env, net), cfg in zip(combos, configs, strict=True):
        typed = to_typed(cfg)
        assert typed.agent.name == agent and typed.net.name == (net or default_net(env)), (agent, env, net)
        assert typed.env.name == (env if env != "atari" else "breakout"), (agent, env, net)


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_composes(logger):
    typed = to_typed(compose_config([f"logger={logger}"]))
    assert typed.logger.name == logger


@pytest.mark.parametrize("env", options("env"))
def test_each_env_picks_its_default_net(env):
    typed = to_typed(compose_config(env_overrides(env) + [f"env={env}"]))
    assert typed.net.name == default_net(env)


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
