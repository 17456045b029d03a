"""Train an agent: ``python train.py [agent=dqn] [env=CartPole] [key=value ...]`` (see ``--help``)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlcore.base.errors import RLCoreError, TrainingInterrupted, fail
from rlcore.base.rundir import check_creatable, discard_refused
from rlcore.config import check_override_keys, register_configs, to_typed
from rlcore.sweeps import job_line, parallel_job
from rlcore.tuning import optuna_sweep, run_trial

register_configs()  # the schemas only: --help and a config error import no torch


TASK_STARTED = False  # Hydra exits 1 when it refuses the command line; rlcore's refusals exit 2: see the end


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> dict | float | None:
    global TASK_STARTED
    TASK_STARTED = True
    # the run directory comes from Hydra explicitly (hydra.run.dir follows run_dir); the cwd is never changed
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # where Hydra put its record, which also says whether the folder is new: ".hydra" only in a folder this
    # invocation made (rlcore.config.hydra_subdir)
    hydra_subdir = hydra_cfg.output_subdir
    announce = parallel_job() and cfg.logger.progress  # jobs side by side: no interleaved bars, one line each
    if announce:
        cfg.logger.progress = False
    try:
        to_typed(cfg)  # every range check, before the loops (and torch) are imported
        if optuna_sweep(hydra_cfg):  # one trial of a search: its seeds' objective goes back to Optuna
            multirun = hydra_cfg.mode == RunMode.MULTIRUN
            return run_trial(
                cfg,
                run_dir,
                list(hydra_cfg.overrides.task),
                hydra_cfg.job.num if multirun else None,
                multirun=multirun,
            )
        from rlcore.run import print_summary, run

        summary = run(cfg, run_dir, list(hydra_cfg.overrides.task))
    except RLCoreError as exc:
        discard_refused(run_dir, hydra_subdir)  # a refused run leaves no folder and no record behind
        fail(str(exc))
        return None
    except OSError as exc:  # the machine refused a write (disk full, read-only folder): say so in one line
        fail(
            f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; the run's checkpoints/last.pt "
            f"(if any) is kept; fix it, then resume with: python train.py resume={run_dir}"
        )
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
    # Exit codes (README): 0 done; 2 the input was refused (one line on stderr); 1 an unexpected failure (a
    # traceback); 130/143 stopped by SIGINT/SIGTERM after saving. Hydra's own refusals exit 1, so they become 2.
    try:
        check_override_keys(sys.argv[1:], Path(__file__).resolve().parent / "configs")
        for arg in sys.argv[1:]:  # a folder that cannot exist fails here in one line, not in Hydra's mkdir
            if arg.startswith("run_dir=") and "," not in arg:
                check_creatable(Path(arg.split("=", 1)[1]), "run_dir")
    except RLCoreError as exc:
        fail(str(exc))
    try:
        main()
    except SystemExit as exc:
        if exc.code == 1 and not TASK_STARTED:  # Hydra refused the command line before the run began
            sys.exit(2)
        raise
