"""The pictures `speechmix demo` writes: curves, confusion, mixing."""

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs on machines with no screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_curves", "plot_confusion", "plot_mixing"]


def plot_curves(results, path):
    """Train and validation loss and accuracy per epoch of each run.

    The validation curves come from clips held out of the training data
    (`result["validation_epochs"]` says after which epochs), never from the
    test split, which is scored once at the end.

    Example:

    >>> import os, tempfile
    >>> run = {"mix": "none", "history": {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8],
    ...        "val_loss": [0.7], "val_accuracy": [0.7]}, "validation_epochs": [2]}
    >>> out = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> plot_curves([run], out)
    >>> os.path.getsize(out) > 0
    True
    """
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for result in results:
        history = result["history"]
        label = result.get("label", result["mix"])
        for axis, metric in zip(axes, ("loss", "accuracy")):
            values = history.get(metric, [])
            line, = axis.plot(range(1, len(values) + 1), values, label=f"{label} train")
            if f"val_{metric}" in history:
                axis.plot(result.get("validation_epochs") or
                          range(1, len(history[f"val_{metric}"]) + 1),
                          history[f"val_{metric}"], "--", color=line.get_color(),
                          label=f"{label} validation")
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.suptitle("Training curves (training targets are mixed where mixing is on; "
                    "validation: clips held out of the training data)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(results, path):
    """Test confusion matrices of each run side by side.

    Rows and columns follow `result["class_names"]` (the data set's order,
    e.g. zero ... nine for the built-in digits).

    Example:

    >>> import os, tempfile
    >>> run = {"mix": "none", "test_accuracy": 0.5, "class_names": ["a", "b"],
    ...        "confusion": [[1, 1], [0, 2]]}
    >>> out = os.path.join(tempfile.mkdtemp(), "confusion.png")
    >>> plot_confusion([run], out)
    >>> os.path.getsize(out) > 0
    True
    """
    figure, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4.2))
    axes = np.atleast_1d(axes)
    for axis, result in zip(axes, results):
        confusion = np.asarray(result["confusion"])
        axis.imshow(confusion, cmap="Blues")
        names = result["class_names"]
        axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        axis.set_yticks(range(len(names)), names, fontsize=7)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{result.get('label', result['mix'])}: test "
                       f"{100 * result['test_accuracy']:.1f} %")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_mixing(panels, path, ratio=0.5):
    """Rows of (clip A, clip B, mix) images, one row per mixing point.

    Args:
        panels: list of `(row_title, a, b)` with 2-D arrays `a`, `b`.
        path: PNG path.
        ratio: r used for the mix `r * a + (1 - r) * b`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> plot_mixing([("input", np.zeros((4, 4)), np.ones((4, 4)))], out)
    >>> os.path.getsize(out) > 0
    True
    """
    figure, axes = plt.subplots(len(panels), 3, figsize=(11, 3 * len(panels)),
                                squeeze=False)
    for row, (title, a, b) in enumerate(panels):
        mixed = ratio * a + (1 - ratio) * b
        for column, (name, image) in enumerate(
                (("clip A", a), ("clip B", b), (f"mix, r={ratio}", mixed))):
            axis = axes[row, column]
            axis.imshow(np.asarray(image).T, origin="lower", aspect="auto",
                        cmap="magma")
            axis.set_title(f"{title}: {name}", fontsize=9)
            axis.set_xlabel("frame")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
