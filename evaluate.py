"""Evaluate a saved policy: ``python evaluate.py run=<run_dir> [episodes=20] [epsilon=0] [video=true]``.

Rebuilds agent and env from the checkpoint alone, plays whole episodes, prints mean ± std and writes
``eval.json`` next to the checkpoint.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from envs import DatasetVectorEnv, make_env
from rlcore.base.errors import RLCoreError, fail
from rlcore.base.seeding import EVAL_SEED_OFFSET, seed_everything
from rlcore.policy import load_agent, resolve_checkpoint
from rlcore.training.evaluation import evaluate

USAGE = """usage: python evaluate.py run=<run_dir> | checkpoint=<file.pt> [key=value ...]

keys:
  run=<dir>          a run directory (uses checkpoints/best.pt, else last.pt; which=last picks last.pt)
  checkpoint=<file>  a checkpoint file instead of run=
  which=best|last    which checkpoint of the run (default best)
  episodes=20        number of complete episodes
  epsilon=0.0        ε of the ε-greedy evaluation policy (null: the env's protocol, e.g. 0.05 on Atari)
  seed=<int>         evaluation env seed (default: the run's seed + 10000)
  device=auto        auto | cpu | cuda
  video=false        also write an mp4 of one evaluation episode next to the checkpoint
"""


@dataclass
class EvaluateConfig:
    run: str | None = None
    checkpoint: str | None = None
    which: str = "best"
    episodes: int = 20
    epsilon: float | None = 0.0
    seed: int | None = None
    device: str = "auto"
    video: bool = False


def parse_args(argv: list[str]) -> EvaluateConfig:
    schema = OmegaConf.structured(EvaluateConfig)
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise RLCoreError(f"arguments must be key=value, got {' '.join(bad)}\n{USAGE}")
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(schema, OmegaConf.from_dotlist(argv)))
    except OmegaConfBaseException as exc:
        raise RLCoreError(f"{str(exc).splitlines()[0]}\n{USAGE}") from None
    if cfg.episodes <= 0:
        raise RLCoreError(f"episodes must be > 0 (got {cfg.episodes})")
    if cfg.epsilon is not None and not 0.0 <= cfg.epsilon <= 1.0:
        raise RLCoreError(f"epsilon must be in [0, 1] (got {cfg.epsilon})")
    if cfg.which not in ("best", "last"):
        raise RLCoreError(f"which must be best or last (got {cfg.which!r})")
    return cfg


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        args = parse_args(argv)
        path = resolve_checkpoint(args.run, args.checkpoint, args.which)
        agent, cfg, ckpt = load_agent(path, args.device)
        seed = args.seed if args.seed is not None else cfg.seed + EVAL_SEED_OFFSET
        seed_everything(seed)
        epsilon = args.epsilon if args.epsilon is not None else float(getattr(cfg.env, "eval_epsilon", 0.0))
        env = make_env(cfg.env, seed, evaluation=True)
        returns, lengths = evaluate(
            agent, env, args.episodes, epsilon=epsilon, progress="evaluate", rng=np.random.default_rng(seed)
        )
        env.close()
        report = None
        if isinstance(
            env, DatasetVectorEnv
        ):  # classification: accuracy, confusion matrix, misclassified images
            from rlcore.training.classification_report import write_report

            report = write_report(
                agent,
                env.images,
                env.labels,
                path.parent,
                path.stem,
                f"{cfg.agent.name} {cfg.net.name} on {cfg.env.name}",
            )
        result = {
            "checkpoint": str(path),
            "env": cfg.env.name,
            "agent": cfg.agent.name,
            "episodes": int(len(returns)),
            "epsilon": epsilon,
            "seed": seed,
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "min_return": float(np.min(returns)),
            "max_return": float(np.max(returns)),
            "mean_length": float(np.mean(lengths)),
            "returns": [float(r) for r in returns],
            "trained_env_steps": int(ckpt.get("counters", {}).get("env_steps", 0)),
        }
        if report is not None:
            result.update(report)
        if args.video:
            from rlcore.training.video import record_episode

            result["video"] = str(
                record_episode(agent, cfg, path.parent / f"{path.stem}_eval.mp4", seed, epsilon)
            )
    except RLCoreError as exc:
        fail(str(exc))
        return 2
    out = path.parent / "eval.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{cfg.agent.name} on {cfg.env.name}: mean return {result['mean_return']:.2f} ± {result['std_return']:.2f} "
        f"over {result['episodes']} episodes (ε={epsilon}) — written to {out}"
    )
    if "test_accuracy" in result:
        print(
            f"test accuracy: {100 * result['test_accuracy']:.2f}% ({result['test_errors']} errors) — "
            f"confusion matrix: {result['confusion_png']}, misclassified: {result['misclassified_png']}"
        )
    if "video" in result:
        print(f"video: {result['video']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
