"""GAN benchmark on MNIST, measured with the project's own LeNet-5 classifier.

    RLCORE_MNIST_DIR=/work/shared/data/mnist python benchmarks/classic_gan.py [--quick]
        [--classifier RUN] [--gan RUN] [--cgan RUN]

1. The classifier: ``python train.py agent=supervised env=MNIST net=lenet5`` (or ``--classifier`` a run of it),
   loaded with the policy loader (:func:`rlcore.policy.load_agent`); its 84 penultimate features (LeNet-5's F6)
   are the feature space, its argmax the class of a sample.
2. The GANs: ``python train.py agent=gan env=MNIST <GAN_NET> ...`` unconditional and with
   ``agent.conditional=true`` (or ``--gan``/``--cgan`` runs of them).
3. Figures: the Fréchet distance (Heusel et al. 2017's formula, in the classifier's feature space instead of
   Inception's) between 10,000 samples and the 10,000 test images, beside the same distance between 10,000
   training images and the test set (the floor); class coverage (the classifier's classes of the samples: all
   10 present, each 6-14 %); for the conditional GAN the share of samples the classifier puts in their
   conditioning class, and GAN-train accuracy (Shmelkov et al. 2018): a LeNet-5 trained only on 60,000 generated
   digits with their conditioning labels, tested on the real test set (target >= 97 %), beside the same recipe
   trained on the 60,000 real digits; and the unconditional discriminator's features on the 1,000-label
   benchmark (benchmarks/mnist.py's recipe, same net from random init vs ``net.pretrained=<gan run>``;
   Radford et al. 2015 sec. 5.1 use DCGAN discriminator features for few-label classification).

Prints a table and writes benchmarks/results/classic_gan.json (and gan_samples.png, gan_conditional_samples.png).
All runs use one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mnist import FINETUNE  # noqa: E402  (the 1,000-label fine-tuning recipe of benchmarks/mnist.py)

from agents.supervised import SupervisedAgent, SupervisedConfig  # noqa: E402
from envs import DatasetEnvConfig  # noqa: E402
from envs.dataset_env import dataset_splits  # noqa: E402
from nets import LeNet5Config, save_encoder  # noqa: E402
from nets.gan import frechet_distance, gaussian_stats  # noqa: E402
from rlcore.base.checkpoint import load_checkpoint  # noqa: E402
from rlcore.policy import load_agent, resolve_checkpoint  # noqa: E402
from rlcore.training.gan import save_grid  # noqa: E402
from rlcore.training.supervised import as_tensors, dataset_accuracy, train_epoch  # noqa: E402

CLASSIFIER = ["agent=supervised", "env=MNIST", "net=lenet5"]
# D: one 3x3 conv of 16 then one of 32 channels, each followed by 2x2 max pooling, FC 128; G: its mirror
GAN_NET = ["net=vgg", "net.channels=[16,32]", "net.convs_per_block=1", "net.features_dim=128"]
GAN_EPOCHS = 20  # 18,740 (D, G) update pairs, about 25 min of one core (docs/classic_models.md)
GAN = ["agent=gan", "env=MNIST", *GAN_NET, "env.validation_fraction=0"]
# GAN-train classifier: benchmarks/mnist.py's LeNet-5 row (99.2 % on the real training set in 3 epochs)
GAN_TRAIN_NET = LeNet5Config(padding="same", batch_norm=True)
GAN_TRAIN = SupervisedConfig(
    epochs=3, batch_size=32, lr=3e-3, lr_schedule="cosine", label_smoothing=0.1, eval_batch_size=1000
)
SAMPLES = 10_000
PARTS = ("fd", "gan_train", "gan_train_real", "labels1000")


def train(name: str, args: list[str], runs: Path) -> Path:
    """``python train.py <args>`` in a fresh run directory under ``runs``; returns the run directory."""
    run_dir = runs / name
    command = [sys.executable, "train.py", *args, "threads=1", "logger.progress=false", f"run_dir={run_dir}"]
    print(f"\n[{name}] {shown([*args, 'threads=1'])}", flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"[{name}] failed: {done.stderr.strip().splitlines()[-1:]}")
    return run_dir


def shown(args: list[str]) -> str:
    """The command line of ``python train.py <args>`` as printed in the table."""
    return "python train.py " + " ".join(shlex.quote(a) for a in args)


@torch.no_grad()
def features_and_classes(
    classifier: SupervisedAgent, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's penultimate features (eval mode) and its predicted classes, in batches."""
    model = classifier.online.eval()
    feats, classes = [], []
    for start in range(0, len(images), 1000):
        h, _ = model.extractor(images[start : start + 1000])
        feats.append(h)
        classes.append(model.head(h).argmax(dim=1))
    return torch.cat(feats), torch.cat(classes)


def generate(run_dir: Path, n: int, seed: int = 123) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples of a GAN run's final generator as uint8 images (as a dataset stores them), and their labels
    (balanced over the classes for a conditional GAN)."""
    agent, _, _ = load_agent(run_dir / "checkpoints" / "last.pt", "cpu")
    torch.manual_seed(seed)
    agent.rng.manual_seed(seed)
    images, labels = [], []
    for start in range(0, n, 1000):
        count = min(1000, n - start)
        given = torch.arange(start, start + count) % agent.n_classes if agent.n_classes else None
        x, y = agent.sample(count, given)
        images.append((x * 255).round().to(torch.uint8))
        if y is not None:
            labels.append(y)
    return torch.cat(images), (torch.cat(labels) if labels else None)


def coverage(classes: torch.Tensor) -> dict:
    share = torch.bincount(classes, minlength=10).double() / len(classes)
    return {
        "class_share": [round(float(s), 4) for s in share],
        "all_present": bool((share > 0).all()),
        "min_share": float(share.min()),
        "max_share": float(share.max()),
        "within_6_14": bool(((share >= 0.06) & (share <= 0.14)).all()),
    }


def train_lenet(
    images: torch.Tensor,
    labels: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    epochs: int,
) -> dict:
    """LeNet-5 trained with the GAN_TRAIN recipe (``epochs`` of it) on (images, labels); real test accuracy."""
    torch.manual_seed(seed)
    space = gym.spaces.Box(0, 255, tuple(images.shape[1:]), np.uint8)
    recipe = dataclasses.replace(GAN_TRAIN, epochs=epochs)  # the cosine schedule spans these epochs
    agent = SupervisedAgent(recipe, GAN_TRAIN_NET, space, gym.spaces.Discrete(10), device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        stats, _ = train_epoch(agent, images, labels, epoch, generator)
        print(f"[gan-train] epoch {epoch + 1}: {stats}", flush=True)
    return {
        "test_accuracy": dataset_accuracy(agent, *test, GAN_TRAIN.eval_batch_size),
        "train_images": len(labels),
        "epochs": epochs,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny GANs and sample counts: a smoke test")
    parser.add_argument("--classifier", type=Path, help="a run of agent=supervised env=MNIST net=lenet5")
    parser.add_argument("--gan", type=Path, help="a run of the unconditional GAN (default: train it)")
    parser.add_argument("--cgan", type=Path, help="a run of the conditional GAN (default: train it)")
    parser.add_argument(
        "--gan-train-epochs", type=int, default=GAN_TRAIN.epochs, help="epochs of both GAN-train classifiers"
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (separate processes can run parts side by side, "
        "each with its own --out)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "classic_gan.json"))
    args = parser.parse_args()
    if not os.environ.get("RLCORE_MNIST_DIR"):
        sys.exit("set RLCORE_MNIST_DIR to the folder with MNIST's IDX files")
    torch.set_num_threads(1)
    start = time.perf_counter()
    runs = ROOT / "benchmarks" / "runs" / time.strftime("%Y%m%d-%H%M%S")
    runs.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    q = args.quick
    n = 1000 if q else SAMPLES
    gan_budget = ["agent.steps=50"] if q else [f"agent.epochs={GAN_EPOCHS}"]

    # a run given on the command line is taken as made by the command the script would have run
    commands = {
        "classifier": [*CLASSIFIER, *(["agent.epochs=1"] if q else [])],
        "gan": [*GAN, *gan_budget],
        "cgan": [*GAN, "agent.conditional=true", *gan_budget],
    }
    classifier_run = args.classifier or train("classifier", commands["classifier"], runs)
    gan_run = args.gan or train("gan", commands["gan"], runs)
    cgan_run = args.cgan or train("cgan", commands["cgan"], runs)
    classifier, _, _ = load_agent(resolve_checkpoint(str(classifier_run)), "cpu")
    splits = dataset_splits(DatasetEnvConfig(dataset="mnist", validation_fraction=0.0), 0)
    train_x, train_y = as_tensors(splits["train"], torch.device("cpu"))
    test_x, test_y = as_tensors(splits["test"], torch.device("cpu"))
    classifier_summary = json.loads((classifier_run / "summary.json").read_text())
    results: dict = {
        "quick": q,
        "torch": torch.__version__,
        "classifier": {
            "command": shown(commands["classifier"]),
            "run": str(classifier_run),
            "test_accuracy": classifier_summary.get("test_accuracy"),
            "feature_space": "LeNet-5 F6 (84 features)",
        },
    }

    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; choose from {', '.join(PARTS)}")
    test_feats, _ = features_and_classes(classifier, test_x)
    test_stats = gaussian_stats(test_feats)
    subset = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:n]
    train_feats, _ = features_and_classes(classifier, train_x[subset])
    results["fd_train_vs_test"] = frechet_distance(*gaussian_stats(train_feats), *test_stats)
    print(f"[fd] train vs test (floor): {results['fd_train_vs_test']:.3f}", flush=True)

    for name, run_dir in (("gan", gan_run), ("cgan", cgan_run)) if "fd" in parts else ():
        images, labels = generate(run_dir, n)
        feats, classes = features_and_classes(classifier, images)
        counters = load_checkpoint(run_dir / "checkpoints" / "last.pt")["counters"]
        row = {
            "command": shown(commands[name]),
            "run": str(run_dir),
            "epochs_measured": counters["epoch"],  # last.pt's: a given run may still be training
            "updates_measured": counters["updates"],
            "samples": len(images),
            "fd_vs_test": frechet_distance(*gaussian_stats(feats), *test_stats),
            "coverage": coverage(classes),
        }
        if labels is not None:
            row["classifier_agrees_with_label"] = float((classes == labels).double().mean())
        results[name] = row
        picture = out.parent / ("gan_samples.png" if name == "gan" else "gan_conditional_samples.png")
        grid = images[:100] if labels is None else images[: 10 * 10].view(10, 10, 1, 28, 28).transpose(0, 1)
        save_grid(grid.reshape(100, 1, 28, 28).float() / 255, 10, picture, f"{name}: {run_dir.name}")
        print(f"[{name}] {json.dumps(row)}", flush=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    gan_train_n = 6000 if q else 60_000
    gan_train: dict = {
        "recipe": f"LeNet-5 padding=same batch_norm=true, {args.gan_train_epochs} epochs, batch 32, Adam 3e-3 "
        "cosine, label smoothing 0.1"
    }
    if "gan_train" in parts:
        images, labels = generate(cgan_run, gan_train_n, seed=7)
        assert labels is not None
        counters = load_checkpoint(cgan_run / "checkpoints" / "last.pt")["counters"]
        gan_train["generated"] = {
            **train_lenet(images, labels, (test_x, test_y), 0, args.gan_train_epochs),
            "cgan_epochs": counters["epoch"],
        }
    if "gan_train_real" in parts:
        real = (train_x[:gan_train_n], train_y[:gan_train_n])
        gan_train["real"] = train_lenet(*real, (test_x, test_y), 0, args.gan_train_epochs)
    if len(gan_train) > 1:
        results["gan_train"] = gan_train
        print(f"[gan-train] {json.dumps(gan_train)}", flush=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    if "labels1000" in parts:
        labels1000 = ["agent=supervised", "env=MNIST", *GAN_NET, "env.labels_per_class=100"]
        # benchmarks/mnist.py's fine-tuning recipe without its dropout: dropout inserts a layer into a ConvNet's
        # head, so the discriminator's extractor (saved without one) would not load into it
        finetune = [f for f in FINETUNE if not f.startswith("net.dropout=")]
        budget = [f"agent.epochs={5 if q else 60}", *finetune]
        rows = {}
        encoder = gan_run / "encoder.pt"
        if not encoder.exists():  # a run still training: its discriminator as of its last epoch's checkpoint
            agent, cfg, _ = load_agent(gan_run / "checkpoints" / "last.pt", "cpu")
            encoder = save_encoder(agent.encoder, runs / "gan_encoder.pt", dataclasses.asdict(cfg.net))
        for name, extra in (("random_init", []), ("gan_discriminator", [f"net.pretrained={encoder}"])):
            run_dir = train(f"labels1000_{name}", [*labels1000, *extra, *budget], runs)
            summary = json.loads((run_dir / "summary.json").read_text())
            rows[name] = {
                "command": shown([*labels1000, *extra, *budget]),
                "test_accuracy": summary["test_accuracy"],
            }
            print(f"[labels1000] {name}: {summary['test_accuracy']:.4f}", flush=True)
        mnist_json = ROOT / "benchmarks" / "results" / "mnist.json"
        if mnist_json.exists():  # the autoencoder's row, as benchmarks/mnist.py measured it
            mnist_rows = json.loads(mnist_json.read_text()).get("rows", {})
            for key in ("labels1000_random", "labels1000_pretrained"):
                if key in mnist_rows:
                    rows[f"mnist.json:{key}"] = {
                        "command": mnist_rows[key].get("command"),
                        "test_accuracy": mnist_rows[key].get("test_accuracy"),
                    }
        results["labels1000"] = rows
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    out.write_text(json.dumps(results, indent=2) + "\n")

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}%"

    print("\n| figure | measured | target / anchor |\n|---|---|---|")
    print(
        f"| classifier test accuracy | {pct(results['classifier']['test_accuracy'])} | (the measuring net) |"
    )
    print(f"| FD train vs test ({n} vs 10,000, floor) | {results['fd_train_vs_test']:.3f} | floor |")
    for name in [k for k in ("gan", "cgan") if k in results]:
        row = results[name]
        cov = row["coverage"]
        print(f"| {name}: FD samples vs test | {row['fd_vs_test']:.3f} | near the floor |")
        print(
            f"| {name}: class coverage (min-max share) | {pct(cov['min_share'])}-{pct(cov['max_share'])}, "
            f"all present: {cov['all_present']} | all 10, each 6-14% |"
        )
    if "cgan" in results:
        agree = results["cgan"]["classifier_agrees_with_label"]
        print(f"| cgan: classifier agrees with the label | {pct(agree)} | - |")
    g = results.get("gan_train", {})
    if "generated" in g:
        print(
            f"| GAN-train accuracy ({gan_train_n} generated) | {pct(g['generated']['test_accuracy'])} | "
            ">= 97% (Shmelkov et al. 2018) |"
        )
    if "real" in g:
        print(f"| same recipe on {gan_train_n} real digits | {pct(g['real']['test_accuracy'])} | reference |")
    for name, row in results.get("labels1000", {}).items():
        print(f"| 1,000 labels: {name} | {pct(row['test_accuracy'])} | `{row['command']}` |")
    print(f"\nwritten to {out} in {results['wall_time_s']} s")


if __name__ == "__main__":
    main()
