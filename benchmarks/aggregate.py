"""Aggregate a multirun across seeds and keep its JSON with the other benchmark results.

    python train.py -m seed=0,1,2,3,4 env=CartPole,Acrobot hydra/launcher=joblib hydra.launcher.n_jobs=2
    python benchmarks/aggregate.py multirun/<time> [--band std]

The same as ``python -m rlcore.report <folder>`` (Markdown table of final greedy evaluation, mean ± std across
seeds, per env/agent/variant; ``aggregate.json`` and ``aggregate.png`` in the folder), plus a copy of the JSON,
with the sweep's train.py command in it, at ``benchmarks/results/aggregate_<folder name>.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlcore.report import main as report_main  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a multirun folder (multirun/<time>) or any folder of runs")
    parser.add_argument("--band", choices=("minmax", "std"), default="minmax", help="spread shown in the PNG")
    args = parser.parse_args()
    status = report_main([str(args.folder), "--band", args.band])
    if status == 0:
        out = ROOT / "benchmarks" / "results" / f"aggregate_{args.folder.resolve().name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.folder / "aggregate.json", out)
        print(f"copied to {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
