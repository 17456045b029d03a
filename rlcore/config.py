"""The typed config schemas' registration with Hydra's ConfigStore, and the composed config made typed.

Each package owns the schemas of its config group (``agents.SCHEMAS``, ``envs.SCHEMAS``, ``nets.SCHEMAS``,
``LOGGER_SCHEMAS`` in :mod:`rlcore.schema` with the top-level ``TrainConfig``); the YAML option files in ``configs/<group>/`` start from one of them
(``defaults: [<schema>, _self_]``), so a misspelt key or a value of the wrong type fails when Hydra composes
the config, and ``__post_init__`` range checks fail in :func:`to_typed` before any training starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from rlcore.base.errors import ConfigError
from rlcore.base.validation import require
from rlcore.schema import LOGGER_SCHEMAS, TrainConfig


def resume_or(resume: str | None, fresh: str) -> str:
    """``run_dir``'s default: the run being resumed, else a fresh timestamped folder."""
    return str(resume) if resume else fresh


def hydra_subdir(resume: str | None, run_dir: str, stamp: str) -> str:
    """Where Hydra writes its own record of an invocation: ``.hydra`` for a new run; a subfolder for a resume, and
    for another attempt on a folder that already holds a run (its config.yaml), so that a run's own ``.hydra/``
    never changes (a refused attempt's subfolder is then removed: :func:`rlcore.base.rundir.discard_refused`)."""
    if resume:
        return f".hydra/resume-{stamp}"
    return f".hydra/attempt-{stamp}" if (Path(run_dir) / "config.yaml").exists() else ".hydra"


def register_configs() -> None:
    """Register the top-level schema, every group's schemas and the resolvers configs/config.yaml uses."""
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
            store.store(group=group, name=name, node=schema)


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
        raise ConfigError(f"config key '{exc.full_key}' has no value; set it on the command line "
                          f"({exc.full_key}=...)") from None
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
            f"this {group} option has no schema; start its YAML file with a '<name>_schema' default",
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
            raise ConfigError(f"the saved config uses {group} schema {name!r}, which this rlcore does not know")
        merged[group] = OmegaConf.structured(groups[group][name])
    try:
        merged = OmegaConf.merge(merged, container)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the saved config does not fit this rlcore's schemas: {str(exc).strip()}") from None
    assert isinstance(merged, DictConfig)
    return to_typed(merged)
