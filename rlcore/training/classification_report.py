"""What ``evaluate.py`` adds for a dataset env: test accuracy, a confusion matrix and the misclassified images.

Works for any agent with ``act(obs, explore=False, epsilon=0)`` (a supervised classifier or a DQN trained
from the reward alone): the answers are the greedy actions on every test image, in file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlcore.base.protocols import Actor


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = number of images of class i answered as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return counts


def predict_all(agent: Actor, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Greedy answers for every image, ``batch_size`` at a time."""
    parts = [
        agent.act(images[i : i + batch_size], explore=False, epsilon=0.0)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts).astype(np.int64)


def plot_confusion(counts: np.ndarray, out_png: Path, title: str) -> None:
    from rlcore.training.plots import subplots

    n = counts.shape[0]
    fig, ax = subplots(figsize=(6.5, 5.5), dpi=100)
    shown = ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > counts.max() / 2 else "black",
            )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(out_png)


def plot_misclassified(
    images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, out_png: Path, limit: int = 64
) -> int:
    """A grid of the first ``limit`` wrongly answered test images, titled 'true→predicted'; returns how many."""
    from rlcore.training.plots import subplots

    wrong = np.flatnonzero(labels != predictions)[:limit]
    cols = 8
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong, strict=False):
        image = images[index]
        ax.imshow(image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1), cmap="gray")
        ax.set_title(f"{labels[index]}→{predictions[index]} #{index}", fontsize=7)
    fig.suptitle(f"misclassified test images (true→predicted, first {len(wrong)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
    return len(wrong)


def write_report(
    agent: Actor, images: np.ndarray, labels: np.ndarray, out_dir: Path, stem: str, title: str
) -> dict:
    """Answer every test image, write ``<stem>_confusion.png`` and ``<stem>_misclassified.png``; returns the figures."""
    predictions = predict_all(agent, images)
    counts = confusion_matrix(labels, predictions, int(max(labels.max(), predictions.max()) + 1))
    confusion_png = Path(out_dir) / f"{stem}_confusion.png"
    misclassified_png = Path(out_dir) / f"{stem}_misclassified.png"
    accuracy = float(np.mean(predictions == labels))
    plot_confusion(counts, confusion_png, f"{title}: accuracy {100 * accuracy:.2f}%")
    plot_misclassified(images, labels, predictions, misclassified_png)
    return {
        "test_accuracy": accuracy,
        "test_errors": int(np.sum(predictions != labels)),
        "confusion_matrix": counts.tolist(),
        "confusion_png": str(confusion_png),
        "misclassified_png": str(misclassified_png),
    }
