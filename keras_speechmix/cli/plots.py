"""The pictures `speechmix demo` writes: curves, confusion, mixing, robustness."""

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs on machines with no screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["plot_curves", "plot_confusion", "plot_mixing", "plot_robustness"]


def _fonts_for(texts):
    """`(families, texts)`: fonts that draw every character of `texts`.

    Matplotlib's default font lacks most non-Latin scripts and warns for
    each missing glyph; class names may be in any script. The default font
    comes first, then installed fonts that add missing characters;
    characters that no installed font has are written as escapes
    (`\\u72d7`), which tell names apart where blank boxes would not.
    """
    default = font_manager.findfont(font_manager.FontProperties())
    missing = {c for text in texts for c in text if not c.isspace()}
    families = []
    candidates = [default] + sorted({f.fname for f in font_manager.fontManager.ttflist}
                                    - {default})
    for path in candidates:
        if "LastResort" in path:
            continue  # draws a box for every character it "has"
        try:
            font = ft2font.FT2Font(path)
        except (OSError, RuntimeError, ValueError):
            continue
        covered = {c for c in missing if font.get_char_index(ord(c))}
        name = font_manager.FontProperties(fname=path).get_name()
        if (covered or path == default) and name not in families:
            families.append(name)
        missing -= covered
        if not missing:
            break
    return families, ["".join(c.encode("unicode_escape").decode() if c in missing else c
                              for c in text) for text in texts]


def plot_curves(results, path):
    """Train and validation loss and accuracy per epoch of each run.

    The validation curves come from clips held out of the training data
    (`result["validation_epochs"]` says after which epochs), never from the
    test split, which is scored once at the end. Every epoch's value is
    marked (so that a run of one epoch shows too); epochs are whole numbers.

    Example:

    >>> import os, tempfile
    >>> run = {"mix": "none", "history": {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8],
    ...        "val_loss": [0.7], "val_accuracy": [0.7]}, "validation_epochs": [2]}
    >>> out = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> plot_curves([run], out)
    >>> os.path.getsize(out) > 0
    True
    """
    families, labels = _fonts_for([r.get("label", r["mix"]) for r in results])
    with plt.rc_context({"font.family": families}):
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for result, label in zip(results, labels):
            history = result["history"]
            first = result.get("first_epoch", 0)
            for axis, metric in zip(axes, ("loss", "accuracy")):
                values = history.get(metric, [])
                epochs = range(first + 1, first + len(values) + 1)
                # Markers for every epoch of short runs, every few of long ones.
                every = max(1, len(values) // 25)
                line, = axis.plot(epochs, values, marker="o", markersize=3,
                                  markevery=every, label=f"{label} train")
                if f"val_{metric}" in history:
                    axis.plot(result.get("validation_epochs") or
                              range(1, len(history[f"val_{metric}"]) + 1),
                              history[f"val_{metric}"], "--", marker="s", markersize=3,
                              markevery=max(1, len(history[f"val_{metric}"]) // 25),
                              color=line.get_color(), label=f"{label} validation")
        last = max([r.get("first_epoch", 0) + len(r["history"].get("loss", []))
                    for r in results] + [1])
        for axis, metric in zip(axes, ("loss", "accuracy")):
            axis.set_xlabel("epoch")
            axis.set_ylabel(metric)
            axis.set_xlim(0.5, last + 0.5)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.suptitle("Training curves (training targets are mixed where mixing is on; "
                        "validation: clips held out of the training data)", fontsize=10)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)


def plot_confusion(results, path):
    """Test confusion matrices of each run side by side.

    Rows and columns follow `result["class_names"]` (the data set's order,
    e.g. zero ... nine for the built-in digits); each cell shows its count
    of clips, and a colour bar gives the scale.

    Example:

    >>> import os, tempfile
    >>> run = {"mix": "none", "test_accuracy": 0.5, "class_names": ["a", "b"],
    ...        "confusion": [[1, 1], [0, 2]]}
    >>> out = os.path.join(tempfile.mkdtemp(), "confusion.png")
    >>> plot_confusion([run], out)
    >>> os.path.getsize(out) > 0
    True
    """
    texts = [r.get("label", r["mix"]) for r in results]
    texts += [n for r in results for n in r["class_names"]]
    families, _ = _fonts_for(texts)
    with plt.rc_context({"font.family": families}):
        figure, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.6))
        axes = np.atleast_1d(axes)
        for axis, result in zip(axes, results):
            confusion = np.asarray(result["confusion"])
            image = axis.imshow(confusion, cmap="Blues", vmin=0)
            figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="clips",
                            ticks=MaxNLocator(integer=True))
            _, names = _fonts_for(result["class_names"])
            size = 8 if len(names) <= 12 else 6
            axis.set_xticks(range(len(names)), names, rotation=45, ha="right",
                            rotation_mode="anchor", fontsize=size)
            axis.set_yticks(range(len(names)), names, fontsize=size)
            if len(names) <= 20:
                # Dark cells get white text, light ones black.
                middle = confusion.max() / 2 if confusion.size else 0
                for (row, column), count in np.ndenumerate(confusion):
                    axis.text(column, row, str(count), ha="center", va="center",
                              fontsize=size, color="white" if count > middle else "black")
            axis.set_xlabel("predicted class")
            axis.set_ylabel("true class")
            _, (label,) = _fonts_for([result.get("label", result["mix"])])
            accuracy = result["test_accuracy"]
            axis.set_title(f"{label}: test accuracy {100 * accuracy:.1f} % "
                           f"(error {100 * (1 - accuracy):.1f} %)", fontsize=9)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)


def plot_mixing(panels, path, ratio=0.5):
    """Rows of (clip A, clip B, mix) images, one row per mixing point.

    Args:
        panels: list of `(row_title, a, b)` with 2-D arrays `a`, `b`, or
            `(row_title, a, b, mixed)` with the mix as a layer made it.
        path: PNG path.
        ratio: r of the mix; without `mixed`, it is `r * a + (1 - r) * b`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> plot_mixing([("input", np.zeros((4, 4)), np.ones((4, 4)))], out)
    >>> os.path.getsize(out) > 0
    True
    """
    figure, axes = plt.subplots(len(panels), 3, figsize=(11, 3 * len(panels)),
                                squeeze=False)
    for row, (title, a, b, *made) in enumerate(panels):
        mixed = made[0] if made else ratio * a + (1 - ratio) * b
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


def _shift_axis(table, kind, clean_x):
    """`(x values, shift names)` of one kind of shift in `table`, with
    "clean" at `clean_x` (0 dB gain; right of every noise SNR)."""
    from keras_speechmix.audio.shifts import parse_shift

    points = sorted((parse_shift(s)[1], s) for s in table if parse_shift(s)[0] == kind)
    if points and "clean" in table:
        points = sorted(points + [(clean_x, "clean")])
    return [x for x, _ in points], [s for _, s in points]


def plot_robustness(table, path, title="Error under recording shifts"):
    """Error against the recording level and against noise SNR, one line per
    method (white noise solid, pink dashed, background dotted), error bars
    the seeds' standard error.

    `table` is `keras_speechmix.training.paired.compare_shifts`' result.

    Example:

    >>> import os, tempfile
    >>> row = lambda e: {"error_mean": e, "error_se": 0.01}
    >>> table = {"clean": {"none": row(0.1)}, "level:-20": {"none": row(0.3)},
    ...          "white:10": {"none": row(0.5)}}
    >>> out = os.path.join(tempfile.mkdtemp(), "robustness.png")
    >>> plot_robustness(table, out)
    >>> os.path.getsize(out) > 0
    True
    """
    methods = []
    for rows in table.values():
        methods += [m for m in rows if m not in methods]
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    figure, (level_axis, noise_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    from keras_speechmix.audio.shifts import parse_shift

    snrs = [parse_shift(s)[1] for s in table if parse_shift(s)[0] not in ("clean", "level")]
    noise_clean = max(snrs, default=0.0) + 10.0
    noise_ticks = {}
    for kind, axis, style in (("level", level_axis, "-"), ("white", noise_axis, "-"),
                              ("pink", noise_axis, "--"), ("background", noise_axis, ":")):
        xs, shifts = _shift_axis(table, kind, 0.0 if kind == "level" else noise_clean)
        if len(xs) < 2:
            continue
        if axis is noise_axis:
            noise_ticks.update(zip(xs, ["clean" if s == "clean" else f"{x:g}"
                                        for x, s in zip(xs, shifts)]))
        for method in methods:
            rows = [table[s].get(method) for s in shifts]
            if any(r is None for r in rows):
                continue
            axis.errorbar(xs, [100 * r["error_mean"] for r in rows],
                          yerr=[100 * (r["error_se"] or 0.0) for r in rows],
                          linestyle=style, marker="o", markersize=4, capsize=3,
                          color=colours[method],
                          label=method if kind == "level" else f"{method} ({kind})")
    level_axis.set_xlabel("gain applied to the test clips (dB; louder clips clipped "
                          "at full scale)")
    noise_axis.set_xlabel("signal-to-noise ratio (dB): white solid, pink dashed, "
                          "background dotted")
    if noise_ticks:
        noise_axis.set_xticks(list(noise_ticks), list(noise_ticks.values()))
    for axis in (level_axis, noise_axis):
        axis.set_ylabel("test error (%)")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    figure.suptitle(f"{title} (mean ± s.e. over seeds; the same shifted clips for "
                    "every method)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
