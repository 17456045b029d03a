"""The typed config schemas' registration with Hydra's ConfigStore, and the composed config made typed.

Each package owns the schemas of its config group (``agents.SCHEMAS``, ``envs.SCHEMAS``, ``nets.SCHEMAS``,
``LOGGER_SCHEMAS`` in :mod:`rlcore.schema` with the top-level ``TrainConfig``); the YAML option files in ``configs/<group>/`` start from one of them
(``defaults: [<schema>, _self_]``), so a misspelt key or a value of the wrong type fails when Hydra composes
the config, and ``__post_init__`` range checks fail in :func:`to_typed` before any training starts.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from rlcore.base.errors import ConfigError
from rlcore.base.rundir import made_by_this_process
from rlcore.base.validation import require
from rlcore.schema import LOGGER_SCHEMAS, CheckpointConfig, ReplayConfig, TrainConfig, TuneConfig


def resume_or(resume: str | None, fresh: str) -> str:
    """``run_dir``'s default: the run being resumed, else a fresh timestamped folder."""
    return str(resume) if resume else fresh


def hydra_subdir(resume: str | None, run_dir: str, stamp: str) -> str:
    """Where Hydra writes its own record of an invocation: ``.hydra`` for a folder this invocation makes; a
    subfolder for a resume, and for an attempt on a folder that already held anything (a run, or a user's
    files), so that nothing there is overwritten: a run's own ``.hydra/`` never changes, and a refused attempt
    removes only its subfolder (:func:`rlcore.base.rundir.discard_refused`). Hydra evaluates this before writing
    its record and again when the task reads it; :func:`made_by_this_process` gives the same answer both times."""
    if resume:
        return f".hydra/resume-{stamp}"
    return ".hydra" if made_by_this_process(Path(run_dir)) else f".hydra/attempt-{stamp}"


def register_configs() -> None:
    """Register the top-level schema, every group's schemas and the resolvers configs/config.yaml uses.

    A group's schemas go in their own group, ``schema/<group>`` (an option file starts from one with
    ``defaults: [/schema/<group>/<name>_schema@_here_, _self_]``), so that ``--help`` and Hydra's "available
    options" list a group's real options only."""
    import agents
    import envs
    import nets

    for name, resolver in (("resume_or", resume_or), ("hydra_subdir", hydra_subdir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, schemas in (
        ("agent", agents.SCHEMAS),
        ("env", envs.SCHEMAS),
        ("net", nets.SCHEMAS),
        ("logger", LOGGER_SCHEMAS),
    ):
        for name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema)


def _reject_unknown_keys(cfg: DictConfig, prefix: str = "") -> None:
    """Hydra's ``+key=value`` can add keys a schema does not have; they would be silently ignored, so refuse them."""
    schema = OmegaConf.get_type(cfg)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
        unknown = [str(k) for k in cfg if k not in known]
        if unknown:
            raise ConfigError(
                f"config key '{prefix}{unknown[0]}' is not a setting of {schema.__name__!s}; "
                f"allowed keys: {', '.join(sorted(known))}"
            )
    for key in cfg:
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(node)):
            _reject_unknown_keys(node, f"{prefix}{key!s}.")


def to_typed(cfg: DictConfig) -> TrainConfig:
    """Turn the composed DictConfig into dataclass instances, running every range check."""
    _reject_unknown_keys(cfg)
    try:
        typed = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as exc:
        raise ConfigError(
            f"config key '{exc.full_key}' has no value; set it on the command line ({exc.full_key}=...)"
        ) from None
    except OmegaConfBaseException as exc:  # one line: OmegaConf's first line, naming the key
        key = getattr(exc, "full_key", None)
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"config key '{key}': {first}" if key else first) from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # __post_init__ checks written as plain errors
        raise ConfigError(str(exc)) from None
    assert isinstance(typed, TrainConfig)
    for group in ("agent", "env", "net", "logger"):
        value = getattr(typed, group)
        require(
            not isinstance(value, dict),
            group,
            f"this {group} option has no schema; start its YAML file's defaults with "
            f"/schema/{group}/<name>_schema@_here_",
        )
    return typed


def _group_schemas() -> dict[str, dict[str, type]]:
    import agents
    import envs
    import nets

    return {"agent": agents.SCHEMAS, "env": envs.SCHEMAS, "net": nets.SCHEMAS, "logger": LOGGER_SCHEMAS}


def schema_names(typed: TrainConfig) -> dict[str, str]:
    """Which schema each group of a typed config uses, so a checkpoint can rebuild it without Hydra."""
    names = {}
    for group, schemas in _group_schemas().items():
        value = getattr(typed, group)
        names[group] = next(name for name, schema in schemas.items() if type(value) is schema)
    return names


def typed_from_container(container: dict, schemas: dict[str, str]) -> TrainConfig:
    """Rebuild a typed TrainConfig from a plain dict (as stored in checkpoints) and its schema names."""
    groups = _group_schemas()
    merged = OmegaConf.structured(TrainConfig)
    for group, name in schemas.items():
        if name not in groups[group]:
            raise ConfigError(
                f"the saved config uses {group} schema {name!r}, which this rlcore does not know"
            )
        merged[group] = OmegaConf.structured(groups[group][name])
    try:
        merged = OmegaConf.merge(merged, container)
    except OmegaConfBaseException as exc:
        raise ConfigError(
            f"the saved config does not fit this rlcore's schemas: {str(exc).strip()}"
        ) from None
    assert isinstance(merged, DictConfig)
    return to_typed(merged)


def check_override_keys(args: Sequence[str], config_dir: Path) -> None:
    """Refuse a misspelt key on the command line with the close ones, before Hydra composes (whose own message
    suggests ``+key=value``, which would add the typo as a new key). Checks the top-level keys and one level into
    each group, against the chosen option's schema where the command line (or the default) names it."""
    try:
        overrides = OverridesParser.create().parse_overrides(overrides=[a for a in args if "=" in a])
    except Exception:  # a malformed override: Hydra says what is wrong with it
        return
    groups: dict[str, dict[str, type]] = {
        **_group_schemas(),
        "replay": {"": ReplayConfig},
        "checkpoint": {"": CheckpointConfig},
        "tune": {"": TuneConfig},
    }
    top = sorted(
        {f.name for f in dataclasses.fields(TrainConfig)}
        | set(groups)
        | {"tuned", "tuned_net", "tuned_agent_net", "search"}
    )
    defaults = (yaml.safe_load((config_dir / "config.yaml").read_text()) or {}).get("defaults", [])
    chosen = {  # the agent and env configs/config.yaml picks (the net follows the env, so it is not told)
        group: str(option)
        for d in defaults
        if isinstance(d, dict)
        for group, option in d.items()
        if group in ("agent", "env")
    }
    chosen.update({o.key_or_group: str(o.value()) for o in overrides if o.key_or_group in chosen})
    for override in overrides:
        key = override.key_or_group
        if (
            override.is_add()
            or override.is_delete()
            or override.package
            or key.startswith("hydra")
            or "/" in key
        ):
            continue
        head, _, rest = key.partition(".")
        if head not in top:
            raise ConfigError(f"config key '{key}' is unknown: there is no '{head}'{_close(head, top)}")
        if not rest or head not in groups:
            continue
        name = rest.split(".")[0]
        schema = _option_schema(config_dir, head, chosen.get(head))
        if schema is not None:
            known = sorted(f.name for f in dataclasses.fields(schema))
            if name not in known:
                raise ConfigError(
                    f"config key '{head}.{name}' is not a setting of {head}={chosen[head]} "
                    f"({schema.__name__}){_close(name, known)}"
                )
        else:
            known = sorted({f.name for schema in groups[head].values() for f in dataclasses.fields(schema)})
            if name not in known:
                raise ConfigError(
                    f"config key '{head}.{name}' is unknown: no {head} option has it{_close(name, known)}"
                )


def _option_schema(config_dir: Path, group: str, option: str | None) -> type | None:
    """The schema an option file of a group starts from (``/schema/<group>/<name>_schema@_here_``), if told."""
    if option is None or not (config_dir / group / f"{option}.yaml").exists():
        return None
    defaults = (yaml.safe_load((config_dir / group / f"{option}.yaml").read_text()) or {}).get("defaults", [])
    names = [d.split("@")[0].rsplit("/", 1)[-1] for d in defaults if isinstance(d, str) and "_schema" in d]
    return _group_schemas()[group].get(names[0]) if names else None


def _close(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return (
        f"; did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else f"; known: {', '.join(choices)}"
    )
