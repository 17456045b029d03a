"""Train an agent: ``python train.py [agent=dqn] [env=CartPole] [key=value ...]`` (see ``--help``)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlcore.config import register_configs
from rlcore.errors import RLCoreError, TrainingInterrupted
from rlcore.run import fail, print_summary, run
from rlcore.sweeps import job_line, parallel_job
from rlcore.tuning import optuna_sweep, run_trial

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> dict | float | None:
    # the run directory comes from Hydra explicitly (hydra.run.dir follows run_dir); the cwd is never changed
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    announce = parallel_job() and cfg.logger.progress  # jobs side by side: no interleaved bars, one line each
    if announce:
        cfg.logger.progress = False
    try:
        if optuna_sweep(hydra_cfg):  # one trial of a search: its seeds' objective goes back to Optuna
            multirun = hydra_cfg.mode == RunMode.MULTIRUN
            return run_trial(cfg, run_dir, list(hydra_cfg.overrides.task), hydra_cfg.job.num if multirun else None,
                             multirun=multirun)
        summary = run(cfg, run_dir, list(hydra_cfg.overrides.task))
    except RLCoreError as exc:
        fail(str(exc))
        return None
    except TrainingInterrupted as exc:  # SIGINT/SIGTERM: the loop saved last.pt; exit 130/143 by convention
        print(f"\n{exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    if cfg.logger.progress:
        print_summary(summary)
    elif announce:
        print(job_line(summary, run_dir), flush=True)
    return summary


if __name__ == "__main__":
    main()
