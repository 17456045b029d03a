"""MNIST benchmark: supervised baselines and DQN from the reward alone on the same nets, the 1,000-label
experiment with and without autoencoder pretraining, and the speed of our supervised loop against a bare
PyTorch loop.

    RLCORE_MNIST_DIR=/work/shared/data/mnist python benchmarks/mnist.py [--quick] [--only lenet5,mlp,...]
    RLCORE_MNIST_DIR=/work/shared/data/mnist python benchmarks/mnist.py --only rnn_rows,jordan_rows,conv1d_rows,rows_speed \
        --out benchmarks/results/mnist_rows_classic.json   # Elman, Jordan and a temporal conv over the rows

Every row is a ``python train.py ...`` command (printed with its result) run in a subprocess; the table is
printed and written to ``benchmarks/results/mnist.json``. ``--quick`` shortens every run (a smoke test,
not the published figures). All runs use ``threads=1``: on a shared 2-core machine two torch threads
contending with other processes were many times slower than one.
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
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.augment import random_affine, random_shift  # noqa: E402
from agents.supervised import Classifier, SupervisedAgent, SupervisedConfig  # noqa: E402
from envs import DatasetEnvConfig  # noqa: E402
from envs.dataset_env import dataset_splits  # noqa: E402
from nets import LeNet5Config, MLPConfig, build_extractor, save_encoder, scale_observation  # noqa: E402
from nets.autoencoder import Autoencoder, masking_noise, reconstruction_loss  # noqa: E402
from nets.configs import Conv1dConfig, JordanConfig, LSTMConfig, RNNConfig  # noqa: E402
from rlcore.training.supervised import as_tensors, train_epoch  # noqa: E402

AE_HIDDEN = [
    512,
    256,
]  # the 1,000-label net of both arms (encoder widths; the head is a linear layer to 10 classes)
AE_MASK = (
    0.8  # masking-noise fraction of the denoising autoencoder (30% gave +2.0 points, 50% +2.8, 80% +3.7)
)
# Pretraining epochs over the 60,000 unlabelled images (~17 min on one loaded core). The gain kept growing
# with pretraining length (same fine-tuning; the plain masking DAE): 20 epochs +3.98 points, 40 +4.40, 60 +4.67,
# 80 +4.72, 100 +4.78; with AE_WARP, 40 epochs +4.85 and 100 +5.37
AE_EPOCHS = 100
AE_WARP = (
    10.0,
    0.1,
    2,
)  # pretraining corruption: rotate ±10°, zoom 1 ± 0.1, shift ±2 px, then mask (see docs/mnist.md)
# Fine-tuning recipe shared by both 1,000-label arms (random init and pretrained): dropout 0.3 on the hidden layers
FINETUNE = ["net.dropout=0.3", "agent.lr_schedule=cosine"]


# A recurrent net over MNIST's 28 raw rows (no per-row MLP), 128 units: the lstm_rows row's net.
ROW_RECURRENT = [
    "net.rows=true",
    "net.encoder=mlp",
    "+net.encoder_kwargs.hidden_sizes=[]",
    "net.hidden_size=128",
]


def ae_net(hidden: list[int]) -> list[str]:
    """The train.py overrides of the 1,000-label MLP with these encoder widths."""
    return ["net=mlp", f"net.hidden_sizes=[{','.join(map(str, hidden))}]", "net.activation=relu"]


def widths(text: str) -> list[int]:
    """``--ae-hidden 1000,500,250`` -> [1000, 500, 250]; anything else is one argparse error, not a traceback."""
    try:
        hidden = [int(h) for h in text.split(",")]
    except ValueError:
        hidden = []
    if not hidden or min(hidden) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive widths such as 512,256, got {text!r}"
        )
    return hidden


def warp_spec(text: str) -> tuple[float, float, int]:
    """``--ae-warp 10,0.1,2`` -> (10.0, 0.1, 2): degrees, zoom and pixels of the pretraining's random warp."""
    try:
        degrees, scale, pixels = text.split(",")
        warp = (float(degrees), float(scale), int(pixels))
    except ValueError:
        warp = (-1.0, 0.0, 0)
    if warp[0] < 0 or not 0 <= warp[1] < 1 or warp[2] < 0:
        raise argparse.ArgumentTypeError(
            f"expected DEGREES,SCALE,PIXELS such as 10,0.1,2 (0 <= SCALE < 1), got {text!r}"
        )
    return warp


def rows(
    quick: bool, encoder_file: Path, hidden: list[int] | None = None, finetune_shift: int = 0, seed: int = 0
) -> dict[str, tuple[list[str], str]]:
    """name -> (train.py arguments, target). ``--quick`` trims epochs/steps only; ``hidden``, ``finetune_shift``
    (agent.augment_shift) and ``seed`` change both 1,000-label arms alike."""
    q = quick
    labels1000 = [
        "agent=supervised",
        "env=MNIST",
        *ae_net(hidden or AE_HIDDEN),
        "env.labels_per_class=100",
        *([f"seed={seed}"] if seed else []),
        *([f"agent.augment_shift={finetune_shift}"] if finetune_shift else []),
    ]
    return {
        "lenet5": (
            [
                "agent=supervised",
                "env=MNIST",
                "net=lenet5",  # its defaults: configs/tuned_agent_net/supervised_MNIST_lenet5.yaml
                *(["agent.epochs=1"] if q else []),
            ],
            ">= 99.2% in <= 3 epochs",
        ),
        "mlp": (
            [
                "agent=supervised",
                "env=MNIST",
                "net=mlp",
                "net.hidden_sizes=[256,256]",
                "net.dropout=0.2",
                f"agent.epochs={1 if q else 20}",
                "agent.lr_schedule=cosine",
                "agent.batch_size=128",
            ],
            ">= 98.3%",
        ),
        "lstm_rows": (
            [
                "agent=supervised",
                "env=MNIST",
                "net=lstm",
                "net.rows=true",
                "net.encoder=mlp",
                "+net.encoder_kwargs.hidden_sizes=[]",
                "net.hidden_size=128",
                f"agent.epochs={1 if q else 8}",
                "agent.lr=2e-3",
                "agent.lr_schedule=cosine",
                "agent.max_grad_norm=1.0",
                "agent.batch_size=128",
            ],
            ">= 98.5%",
        ),
        # Elman (net=rnn), Jordan (net=jordan) and a temporal conv (net=conv1d) over the same 28 rows, with the
        # LSTM row's recipe at 3 epochs (docs/classic_models.md).
        **{
            f"{net}_rows": (
                [
                    "agent=supervised",
                    "env=MNIST",
                    f"net={net}",
                    *net_keys,
                    f"agent.epochs={1 if q else 3}",
                    "agent.lr=2e-3",
                    "agent.lr_schedule=cosine",
                    "agent.max_grad_norm=1.0",
                    "agent.batch_size=128",
                ],
                "beside lstm_rows: same rows, same recipe, 3 epochs",
            )
            for net, net_keys in (
                ("rnn", ROW_RECURRENT),
                ("jordan", [*ROW_RECURRENT, "net.output_size=128"]),
                ("conv1d", ["net.dilations=[1,2]"]),
            )
        },
        "dqn_lenet5": (
            ["agent=dqn", "env=MNIST", "net=lenet5", *(["total_steps=20000"] if q else [])],
            ">= 98% from reward only",
        ),
        "labels1000_random": ([*labels1000, f"agent.epochs={5 if q else 60}", *FINETUNE], "baseline"),
        "labels1000_pretrained": (
            [*labels1000, f"net.pretrained={encoder_file}", f"agent.epochs={5 if q else 60}", *FINETUNE],
            ">= random + 5 points",
        ),
    }


def run_train(name: str, args: list[str], runs: Path) -> dict:
    """``python train.py <args>`` in a fresh run directory; returns its summary.json plus the command."""
    run_dir = runs / name
    command = [sys.executable, "train.py", *args, "threads=1", "logger.progress=false", f"run_dir={run_dir}"]
    shown = "python " + " ".join(shlex.quote(a) for a in command[1:-1])  # without the scratch run_dir
    print(f"\n[{name}] {shown}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-4000:])
        return {"command": shown, "error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["command"] = shown
    summary["process_s"] = round(time.perf_counter() - start, 1)
    print(
        f"[{name}] test accuracy {100 * summary['test_accuracy']:.2f}% in {summary['wall_time_s']:.0f} s",
        flush=True,
    )
    return summary


def pretrain_autoencoder(
    out: Path,
    epochs: int,
    mask: float = AE_MASK,
    shift: int = 0,
    gaussian: float = 0.0,
    hidden: list[int] | None = None,
    warp: tuple[float, float, int] = (0.0, 0.0, 0),
    seed: int = 0,
) -> tuple[Path, list[float]]:
    """Denoising autoencoder (Vincent et al. 2008: masking noise, ``mask`` of the pixels zeroed, BCE on the clean
    pixels), trained end to end on all 60,000 train images with labels unused; saves the encoder for
    ``net.pretrained``. With ``shift`` > 0 each batch is first translated by up to ``shift`` pixels
    (:func:`agents.augment.random_shift`) and the autoencoder reconstructs the clean shifted image from its
    masked version (``shift=0`` draws nothing: the same encoder as before the option existed). ``gaussian`` > 0
    adds N(0, gaussian^2) noise to every pixel (scaled to [0, 1]) after the masking, unclipped (the additive
    isotropic Gaussian corruption of Vincent et al. 2010, here on top of the masking). ``hidden``: the encoder's
    widths (default ``AE_HIDDEN``; the fine-tuned net must have the same). ``warp = (degrees, scale, pixels)``
    makes a random rotation, zoom and shift part of the corruption (:func:`agents.augment.random_affine`, before
    the masking), and the autoencoder rebuilds the image as it was: with no labels, it learns that a slightly
    rotated, resized or moved digit is the same digit. ``(0, 0, 0)`` draws nothing. ``seed`` seeds the
    initialisation, the batch order and the corruptions.

    (Greedy layer-wise pretraining with ``nets.autoencoder.pretrain_stacked`` was tried first: +0.35 points;
    the other recipes tried are listed in docs/mnist.md.)
    """
    torch.manual_seed(seed)
    data = dataset_splits(DatasetEnvConfig(dataset="mnist", validation_fraction=0.0), 0)["train"]
    images, _ = as_tensors(data, torch.device("cpu"))
    hidden = list(hidden or AE_HIDDEN)
    encoder = build_extractor(MLPConfig(hidden_sizes=hidden, activation="relu"), images.shape[1:])
    autoencoder = Autoencoder(encoder)  # mirrored dense decoder, e.g. 256 -> 512 -> 784 logits
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        total = torch.zeros(())
        for start in range(0, len(images), 128):
            batch = random_shift(images[order[start : start + 128]], shift, generator)
            corrupted = masking_noise(random_affine(batch, *warp, generator), mask, generator)
            if gaussian > 0:
                corrupted = scale_observation(corrupted) + gaussian * torch.randn(
                    corrupted.shape, generator=generator
                )
            reconstruction, _ = autoencoder(corrupted)
            loss = reconstruction_loss(reconstruction, Autoencoder.target(batch), "bce")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        history.append(total.item() / len(images))
        print(f"[autoencoder] epoch {len(history)}: BCE {history[-1]:.4f}", flush=True)
    path = save_encoder(encoder, out, {"name": "mlp", "hidden_sizes": hidden, "activation": "relu"})
    return path, history


def loop_speed(epochs: int) -> dict:
    """Seconds per LeNet-5 epoch: our ``train_epoch`` vs a bare PyTorch loop, same tensors, net and optimizer."""
    torch.set_num_threads(1)
    data = dataset_splits(DatasetEnvConfig(dataset="mnist"), 0)["train"]
    x, y = as_tensors(data, torch.device("cpu"))
    cfg = SupervisedConfig(lr=2e-3, lr_schedule="cosine", epochs=epochs, batch_size=64)
    net_cfg = LeNet5Config(activation="relu", pooling="max")
    import gymnasium as gym

    space, classes = gym.spaces.Box(0, 255, x.shape[1:], np.uint8), gym.spaces.Discrete(10)
    ours_s, bare_s = [], []
    for epoch in range(epochs):  # alternate, so both see the same load on a shared machine
        torch.manual_seed(epoch)
        agent = SupervisedAgent(cfg, net_cfg, space, classes, device=torch.device("cpu"))
        start = time.perf_counter()
        train_epoch(agent, x, y, 0, torch.Generator().manual_seed(epoch))
        ours_s.append(time.perf_counter() - start)

        torch.manual_seed(epoch)
        model = Classifier(build_extractor(net_cfg, space), 10)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(y), 64):
            index = order[i : i + 64]
            logits, _ = model(x[index])
            loss = F.cross_entropy(logits, y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        bare_s.append(time.perf_counter() - start)
        print(f"[speed] epoch {epoch}: ours {ours_s[-1]:.2f} s, bare {bare_s[-1]:.2f} s", flush=True)
    return {
        "ours_epoch_s": min(ours_s),
        "bare_epoch_s": min(bare_s),
        "ratio": min(ours_s) / min(bare_s),
        "ours_all_s": ours_s,
        "bare_all_s": bare_s,
        "net": "lenet5 (relu, max pool)",
        "batch_size": 64,
        "threads": 1,
    }


def rows_speed(repeats: int) -> dict:
    """Milliseconds per forward + backward pass on a batch of 128 MNIST images read row by row, for the row
    nets of the ``*_rows`` rows, interleaved in one process so that all see the same load (their wall times
    in the table come from different moments of a shared machine). Median over ``repeats`` passes after two
    warm-up passes; ``ratio_to_rnn`` is the figure to quote."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (1, 28, 28)
    raw_rows = {"rows": True, "encoder_kwargs": {"hidden_sizes": []}, "hidden_size": 128}
    nets = {
        "rnn": build_extractor(RNNConfig(**raw_rows), shape),
        "lstm": build_extractor(LSTMConfig(**raw_rows), shape),
        "jordan": build_extractor(JordanConfig(**raw_rows, output_size=128), shape),
        "conv1d": build_extractor(Conv1dConfig(dilations=[1, 2]), shape),
    }
    images = torch.randint(0, 256, (128, *shape), dtype=torch.uint8)
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(repeats + 2):
        for name, net in nets.items():
            start = time.perf_counter()
            features, _ = net(images)
            features.sum().backward()
            times[name].append(time.perf_counter() - start)
    ms = {name: 1e3 * float(np.median(t[2:])) for name, t in times.items()}
    return {
        "ms_per_batch_128": {k: round(v, 1) for k, v in ms.items()},
        "ratio_to_rnn": {k: round(v / ms["rnn"], 2) for k, v in ms.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test of the script")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated row names (default: all), plus 'speed' and 'rows_speed'",
    )
    parser.add_argument(
        "--ae-hidden",
        type=widths,
        default=AE_HIDDEN,
        help="encoder widths of both 1,000-label arms (and the autoencoder), e.g. 1000,500,250",
    )
    parser.add_argument("--ae-epochs", type=int, default=AE_EPOCHS, help="pretraining epochs")
    parser.add_argument(
        "--ae-shift", type=int, default=0, help="pretraining: random shifts of up to this many pixels"
    )
    parser.add_argument(
        "--ae-gaussian", type=float, default=0.0, help="pretraining: Gaussian noise std after masking"
    )
    parser.add_argument(
        "--ae-warp",
        type=warp_spec,
        default=AE_WARP,
        help="pretraining: random rotation (degrees), zoom and shift (pixels) as part of the corruption; "
        "0,0,0 turns it off (default %(default)s)",
    )
    parser.add_argument(
        "--finetune-shift", type=int, default=0, help="agent.augment_shift of both 1,000-label arms"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of both 1,000-label arms (labels, init, batches)"
    )
    parser.add_argument(
        "--ae-seed", type=int, default=0, help="seed of the pretraining (init, batches, corruptions)"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mnist.json"))
    args = parser.parse_args()
    if not os.environ.get("RLCORE_MNIST_DIR"):
        sys.exit("set RLCORE_MNIST_DIR to the folder with MNIST's IDX files")
    torch.set_num_threads(1)
    scratch = ROOT / "benchmarks" / "runs" / time.strftime("%Y%m%d-%H%M%S")
    scratch.mkdir(parents=True, exist_ok=True)
    encoder_file = scratch / "dae_encoder.pt"
    hidden = args.ae_hidden
    table = rows(args.quick, encoder_file, hidden, args.finetune_shift, args.seed)
    wanted = [w for w in args.only.split(",") if w] or [*table, "speed", "rows_speed"]
    results: dict = {"quick": args.quick, "torch": torch.__version__, "rows": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        """Merge this process's rows into the file (two benchmark processes may share it, e.g. --only a / --only b)."""
        merged = json.loads(out.read_text()) if out.exists() and args.only else {"rows": {}}
        merged["rows"] = {**merged.get("rows", {}), **results["rows"]}
        merged.update({k: v for k, v in results.items() if k != "rows"})
        out.write_text(json.dumps(merged, indent=2) + "\n")

    for name, (train_args, target) in table.items():
        if name not in wanted:
            continue
        if name == "labels1000_pretrained":
            start = time.perf_counter()
            ae_epochs = 1 if args.quick else args.ae_epochs
            _, history = pretrain_autoencoder(
                encoder_file,
                ae_epochs,
                shift=args.ae_shift,
                gaussian=args.ae_gaussian,
                hidden=hidden,
                warp=args.ae_warp,
                seed=args.ae_seed,
            )
            results["autoencoder"] = {
                "kind": "denoising MLP AE 784-"
                + "-".join(map(str, hidden))
                + f" (mirrored decoder), masking {AE_MASK:.0%}, BCE",
                "shift": args.ae_shift,
                "gaussian": args.ae_gaussian,
                "warp_degrees_scale_pixels": list(args.ae_warp),
                "seed": args.ae_seed,
                "epochs": ae_epochs,
                "bce_per_epoch": history,
                "wall_time_s": round(time.perf_counter() - start, 1),
                "pretrain_code": "benchmarks/mnist.py:pretrain_autoencoder",
            }
            print(f"[autoencoder] pretrained in {results['autoencoder']['wall_time_s']} s", flush=True)
        summary = run_train(name, train_args, scratch)
        results["rows"][name] = {
            "target": target,
            **{
                k: summary.get(k)
                for k in (
                    "command",
                    "test_accuracy",
                    "epochs",
                    "total_steps",
                    "wall_time_s",
                    "epoch_time_s",
                    "train_sps",
                    "error",
                )
            },
        }
        save()
    if "speed" in wanted:
        results["speed"] = loop_speed(2 if args.quick else 3)
        save()
    results = json.loads(out.read_text())
    print("\n| row | test accuracy | epochs | wall s | target | command |\n|---|---|---|---|---|---|")
    for name, row in results["rows"].items():
        acc = "error" if row.get("test_accuracy") is None else f"{100 * row['test_accuracy']:.2f}%"
        print(
            f"| {name} | {acc} | {row.get('epochs') or '-'} | {row.get('wall_time_s')} | {row['target']} | `{row['command']}` |"
        )
    if "rows_speed" in wanted:
        results["rows_speed"] = rows_speed(3 if args.quick else 20)
        save()
    if "rows_speed" in results:
        s = results["rows_speed"]
        print("\nrow nets, forward + backward on 128 images (1 thread, interleaved):")
        for name, ms in s["ms_per_batch_128"].items():
            print(f"  {name:7s} {ms:7.1f} ms  x{s['ratio_to_rnn'][name]:.2f} of rnn")
    if "speed" in results:
        s = results["speed"]
        print(
            f"\nLeNet-5 epoch (1 thread): ours {s['ours_epoch_s']:.2f} s, bare PyTorch {s['bare_epoch_s']:.2f} s, "
            f"ratio {s['ratio']:.3f}"
        )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
