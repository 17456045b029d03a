"""RBM, DBN and sparse-coding figures on MNIST, every one from ``python train.py ...`` commands (printed with results).

    RLCORE_MNIST_DIR=/work/shared/data/mnist python benchmarks/classic_rbm.py [--only ais,dbn,labels1000] [--quick]

Sections (each writes its rows into ``benchmarks/results/classic_rbm.json`` as it finishes, merged with the rows
already there, so sections can run in separate processes):

* ``ais``: a 500-hidden RBM trained by PCD on binarised MNIST (``agent=rbm agent.binarize=true``); its test
  log-likelihood from AIS (Salakhutdinov & Murray 2008, Table 2: CD-25 -86.34 nats, CD-1 -125.53, both 500
  hidden units), the AIS settings, and the spread of ``--ais-repeats`` further independent AIS estimates.
* ``dbn``: a 784-500-500-2000 DBN (``agent=dbn``) fine-tuned with backprop on all training labels
  (``agent=supervised net.pretrained=<dbn run>``); target test accuracy >= 98.8 % (Hinton, Osindero & Teh 2006:
  1.25 % error for their up-down fine-tuned DBN; Hinton & Salakhutdinov 2006 report 1.2 % with backprop).
* ``labels1000``: the 1,000-label recipe of benchmarks/mnist.py (100 labels per class, 60 epochs, dropout 0.3,
  cosine lr) on the DBN's encoder and on a sparse-coding LISTA encoder, each beside the same net from random
  init, so the rows sit next to the autoencoder's (benchmarks/results/mnist.json).

``--quick`` shortens everything (a smoke test of the script, not the figures). All runs use ``threads=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mnist import FINETUNE  # noqa: E402  (the 1,000-label fine-tuning recipe, shared)
from envs import DatasetEnvConfig  # noqa: E402
from envs.dataset_env import dataset_splits  # noqa: E402
from nets.rbm import RBM  # noqa: E402
from nets.rbm_ais import ais_betas, ais_log_partition, average_log_likelihood  # noqa: E402
from rlcore.base.checkpoint import load_checkpoint  # noqa: E402

DBN_HIDDEN = [500, 500, 2000]  # Hinton et al. 2006
LABELS1000 = ["agent=supervised", "env=MNIST", "env.labels_per_class=100", "agent.epochs=60", *FINETUNE]
# net=lista has no dropout option: its two arms (random init, pretrained) share the recipe without it
LABELS1000_NO_DROPOUT = [a for a in LABELS1000 if not a.startswith("net.dropout")]


def finite(value: object) -> object:
    """Strict JSON: a non-finite float (an AIS lower bound of log 0) is written as null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def list_arg(values: list[int]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


def run_train(name: str, args: list[str], runs: Path) -> dict:
    """``python train.py <args>`` in a fresh run directory; returns its summary.json plus the command."""
    run_dir = runs / name
    command = [sys.executable, "train.py", *args, "threads=1", "logger.progress=false", f"run_dir={run_dir}"]
    shown = "python " + " ".join(shlex.quote(a) for a in command[1:-1])
    print(f"\n[{name}] {shown}", flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-4000:])
        raise SystemExit(f"[{name}] failed")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["command"] = shown
    summary["run_dir"] = str(run_dir)
    shown_figure = summary.get("test_accuracy", summary.get("test_log_likelihood"))
    print(f"[{name}] done in {summary['wall_time_s']:.0f} s: {shown_figure}", flush=True)
    return summary


def ais_spread(run_dir: Path, repeats: int, runs: int, steps: int) -> list[dict]:
    """Further AIS estimates of the trained RBM (new seeds): log Z and the test log-likelihood of each."""
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["agent"]["dbn"]
    rbm = RBM(state["rbms.0.weight"].shape[1], state["rbms.0.weight"].shape[0])
    rbm.load_state_dict({k.removeprefix("rbms.0."): v for k, v in state.items()})
    splits = dataset_splits(DatasetEnvConfig(dataset="mnist"), 0)
    binary = torch.Generator().manual_seed(0)  # the binarisation the run used (agent.binarize, seed 0)
    train = torch.bernoulli(
        torch.as_tensor(np.array(splits["train"].images)).float().div(255).flatten(1), generator=binary
    )
    binary = torch.Generator().manual_seed(0)
    test = torch.bernoulli(
        torch.as_tensor(np.array(splits["test"].images)).float().div(255).flatten(1), generator=binary
    )
    p = train.mean(0).clamp(1e-3, 1 - 1e-3)
    out = []
    for repeat in range(repeats):
        start = time.perf_counter()
        result = ais_log_partition(
            rbm,
            torch.log(p / (1 - p)),
            runs=runs,
            betas=ais_betas(steps),
            generator=torch.Generator().manual_seed(100 + repeat),
        )
        out.append(
            {
                "seed": 100 + repeat,
                "log_z": result.log_z,
                "log_z_minus_3se": result.log_z_low,
                "log_z_plus_3se": result.log_z_high,
                "test_log_likelihood": average_log_likelihood(rbm, test, result.log_z),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(f"[ais] repeat {repeat}: {out[-1]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="ais,dbn,labels1000", help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test of the script")
    parser.add_argument("--rbm-epochs", type=int, default=10)
    parser.add_argument("--dbn-epochs", type=int, default=10, help="CD-1 epochs per DBN layer")
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument("--sc-epochs", type=int, default=3, help="sparse coding: dictionary epochs")
    parser.add_argument("--ais-row", default="rbm_pcd_ais", help="row name of the AIS figure")
    parser.add_argument("--ais-repeats", type=int, default=1, help="extra AIS estimates for the spread")
    parser.add_argument("--skip-done", action="store_true", help="skip rows the JSON already holds")
    parser.add_argument("--sc-run", default="", help="reuse this agent=sparse_coding run directory")
    parser.add_argument(
        "--ais-spread-of",
        default="",
        help="only add --ais-repeats AIS estimates to this rbm run's row (--ais-row)",
    )
    parser.add_argument("--dbn-run", default="", help="reuse this agent=dbn run directory (skip pretraining)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "classic_rbm.json"))
    args = parser.parse_args()
    if not os.environ.get("RLCORE_MNIST_DIR"):
        sys.exit("set RLCORE_MNIST_DIR to the folder with MNIST's IDX files")
    torch.set_num_threads(1)
    q = args.quick
    wanted = set(args.only.split(","))
    scratch = ROOT / "benchmarks" / "runs" / time.strftime("%Y%m%d-%H%M%S")
    scratch.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(rows: dict) -> None:
        merged = json.loads(out.read_text()) if out.exists() else {"rows": {}}
        merged["rows"].update(rows)
        merged["torch"] = torch.__version__
        out.write_text(json.dumps(finite(merged), indent=2, allow_nan=False) + "\n")

    if args.ais_spread_of:  # more AIS estimates for an existing row (its spread over runs)
        row = json.loads(out.read_text())["rows"][args.ais_row]
        spread = ais_spread(
            Path(args.ais_spread_of), args.ais_repeats, row["ais"]["runs"], row["ais"]["intermediate"]
        )
        row["extra_estimates"] = [*row["extra_estimates"], *spread]
        estimates = [row["test_log_likelihood"], *(s["test_log_likelihood"] for s in row["extra_estimates"])]
        row["test_log_likelihood_mean"] = float(np.mean(estimates))
        row["test_log_likelihood_std"] = float(np.std(estimates))
        save({args.ais_row: row})
        wanted = set()
    if "ais" in wanted:
        ais_runs, ais_steps = (20, 1000) if q else (100, 14_500)
        rbm_args = [
            "agent=rbm",
            "env=MNIST",
            "agent.binarize=true",
            "agent.persistent=true",
            "agent.lr=0.05",
            "agent.lr_decay=true",
            f"agent.epochs={1 if q else args.rbm_epochs}",
            f"agent.ais_runs={ais_runs}",
            f"agent.ais_steps={ais_steps}",
        ]
        summary = run_train(args.ais_row, rbm_args, scratch)
        spread = ais_spread(Path(summary["run_dir"]), args.ais_repeats, ais_runs, ais_steps)
        estimates = [summary["test_log_likelihood"], *(s["test_log_likelihood"] for s in spread)]
        save(
            {
                args.ais_row: {
                    "target": ">= -90 nats (Salakhutdinov & Murray 2008 Table 2: CD-25 -86.34, CD-1 -125.53)",
                    "command": summary["command"],
                    "test_log_likelihood": summary["test_log_likelihood"],
                    "train_log_likelihood": summary["train_log_likelihood"],
                    "ais": {
                        "runs": ais_runs,
                        "intermediate": ais_steps,
                        "schedule": "Salakhutdinov & Murray 2008",
                        "base": "independent pixels with the training marginals",
                    },
                    "ais_log_z": summary["ais_log_z"],
                    "ais_log_z_pm3se": [summary["ais_log_z_minus_3se"], summary["ais_log_z_plus_3se"]],
                    "extra_estimates": spread,
                    "test_log_likelihood_mean": float(np.mean(estimates)),
                    "test_log_likelihood_std": float(np.std(estimates)),
                    "epochs": summary["epochs"],
                    "wall_time_s": summary["wall_time_s"],
                }
            }
        )

    dbn_run = Path(args.dbn_run) if args.dbn_run else None
    if dbn_run is None and ("dbn" in wanted or "labels1000" in wanted):  # --dbn-run skips pretraining
        summary = run_train(
            "dbn_pretrain",
            [
                "agent=dbn",
                "env=MNIST",
                f"agent.hidden_sizes={list_arg(DBN_HIDDEN)}",
                f"agent.epochs={1 if q else args.dbn_epochs}",
            ],
            scratch,
        )
        dbn_run = Path(summary["run_dir"])
        save(
            {
                "dbn_pretrain": {
                    k: summary[k] for k in ("command", "wall_time_s", "epochs", "final_val_recon_error")
                }
            }
        )
    dbn_net = ["net=mlp", f"net.hidden_sizes={list_arg(DBN_HIDDEN)}", "net.activation=sigmoid"]
    if "dbn" in wanted and dbn_run is not None:
        finetune = [
            "agent=supervised",
            "env=MNIST",
            *dbn_net,
            f"net.pretrained={dbn_run}",
            # backprop fine-tuning with dropout on the hidden units, as Srivastava et al. 2014 (Table 2: "DBN +
            # dropout finetuning", 0.92 % error); Adam with a cosine schedule and label smoothing 0.1
            "net.dropout=0.3",
            "agent.label_smoothing=0.1",
            "agent.lr=1e-3",
            "agent.lr_schedule=cosine",
            "agent.batch_size=100",
            f"agent.epochs={1 if q else args.finetune_epochs}",
        ]
        summary = run_train("dbn_finetune_all_labels", finetune, scratch)
        save(
            {
                "dbn_finetune_all_labels": {
                    "target": ">= 98.8% (Hinton et al. 2006: 1.25% error)",
                    **{k: summary.get(k) for k in ("command", "test_accuracy", "epochs", "wall_time_s")},
                }
            }
        )
    if "labels1000" in wanted and dbn_run is not None:
        epochs = ["agent.epochs=5"] if q else []
        rows = {
            "labels1000_dbn_random": [*LABELS1000, *dbn_net, *epochs],
            "labels1000_dbn_pretrained": [*LABELS1000, *dbn_net, f"net.pretrained={dbn_run}", *epochs],
        }
        sc = (
            {"run_dir": args.sc_run}
            if args.sc_run
            else run_train(
                "sparse_coding",
                [
                    "agent=sparse_coding",
                    "env=MNIST",
                    f"agent.epochs={1 if q else args.sc_epochs}",
                    f"agent.lista_epochs={1 if q else 3}",
                ],
                scratch,
            )
        )
        if not args.sc_run:
            save(
                {
                    "sparse_coding_pretrain": {
                        k: sc.get(k)
                        for k in (
                            "command",
                            "wall_time_s",
                            "val_objective_fista",
                            "val_objective_lista",
                            "val_active_fraction",
                        )
                    }
                }
            )
        lista_net = ["net=lista", "net.atoms=256", "net.iterations=3"]
        rows["labels1000_lista_random"] = [*LABELS1000_NO_DROPOUT, *lista_net, *epochs]
        rows["labels1000_lista_pretrained"] = [
            *LABELS1000_NO_DROPOUT,
            *lista_net,
            f"net.pretrained={sc['run_dir']}",
            *epochs,
        ]
        done = json.loads(out.read_text())["rows"] if out.exists() else {}
        for name, train_args in rows.items():
            if args.skip_done and done.get(name, {}).get("test_accuracy") is not None:
                continue
            summary = run_train(name, train_args, scratch)
            save({name: {k: summary.get(k) for k in ("command", "test_accuracy", "epochs", "wall_time_s")}})

    rows = json.loads(out.read_text())["rows"]
    print("\n| row | figure | target | command |\n|---|---|---|---|")
    for name, row in rows.items():
        if "test_accuracy" in row:
            figure = f"{100 * row['test_accuracy']:.2f}% test accuracy"
        elif "test_log_likelihood" in row:
            figure = f"{row['test_log_likelihood']:.2f} nats (mean {row['test_log_likelihood_mean']:.2f} ± {row['test_log_likelihood_std']:.2f} over {1 + len(row['extra_estimates'])} AIS estimates)"
        else:
            figure = f"{row.get('wall_time_s')} s"
        print(f"| {name} | {figure} | {row.get('target', '-')} | `{row['command']}` |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
