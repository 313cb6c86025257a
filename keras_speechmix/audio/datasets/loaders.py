"""Loaders: a folder of class folders, a CSV, FSDD, the built-in digits.

Loaders decode every file eagerly into a `ClipSet`. A file that cannot be
used (missing, empty, corrupt, non-finite samples) is skipped and recorded
with its reason in `ClipSet.report`, and a one-line warning gives the count;
with `on_error="raise"` the first such file raises instead.
"""

import concurrent.futures
import csv
import dataclasses
import logging
import os
import re
from pathlib import Path

import numpy as np

from keras_speechmix.audio import decode as audio
from keras_speechmix.audio.datasets.clips import ClipSet, LoadReport

__all__ = ["from_folder", "natural_order", "from_csv", "fsdd", "builtin_digits",
           "load", "listing", "Listing"]

logger = logging.getLogger(__package__)  # the datasets package's one logger

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>.+)_(?P<index>\d+)$")
# ESC-10/50 clip names: {fold}-{source recording id}-{take letter}.ogg
ESC_NAME = re.compile(r"^(?P<fold>\d+)-(?P<source>\d+)-(?P<take>[A-Z]+)$")



def _check_on_error(on_error):
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'; got {on_error!r}")


def _decode_all(paths, on_error, report):
    """Decodes `paths` (mono, native rate) in threads (soundfile drops the GIL).

    Returns a list aligned with `paths` holding `(waveform, rate)` or None for
    skipped files (recorded in `report`).
    """
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(audio.load_audio, p) for p in paths]
        results = []
        for path, future in zip(paths, futures):
            try:
                results.append(future.result())
            except (audio.AudioDecodeError, OSError, ImportError) as e:
                if on_error == "raise":
                    for f in futures:
                        f.cancel()
                    raise
                report.skipped.append((str(path), str(e)))
                results.append(None)
    return results


def _resolve_rate(results, paths, sample_rate, source):
    if sample_rate is not None:
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive int; got {sample_rate!r}")
        return int(sample_rate)
    rates = {}
    for r, p in zip(results, paths):
        if r is not None:
            rates.setdefault(r[1], p)
    if len(rates) > 1:
        listing = ", ".join(f"{rate} Hz (e.g. {path})" for rate, path in sorted(rates.items()))
        raise ValueError(
            f"{source}: files have different sample rates ({listing}); "
            "pass sample_rate=... to resample them to one rate"
        )
    return next(iter(rates)) if rates else None


def _resample_all(results, rate):
    def one(item):
        wave, native = item
        if native == rate:
            return wave
        return audio.resample(wave, native, rate).numpy()

    todo = [r for r in results if r is not None]
    if all(native == rate for _, native in todo):
        return [None if r is None else r[0] for r in results]
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        converted = iter(list(pool.map(one, todo)))
    return [None if r is None else next(converted) for r in results]


def _describe(path, reason):
    # Errors from audio.load_audio already start with the path.
    return reason if reason.startswith(path) else f"{path}: {reason}"


@dataclasses.dataclass
class Listing:
    """The files a loader found, before any is decoded.

    `items` are dicts with `path`, `label` (an int; for a multi-label CSV
    a list of ints) and optional `fold`, `group` and `meta`. Loaders decode
    them into a `ClipSet`; `keras_speechmix.audio.streaming` reads them as it goes.

    Example:

    >>> found = Listing("my_data", [{"path": "a.wav", "label": 0}], ["yes", "no"],
    ...                 LoadReport(found=1))
    >>> found.items[0]["path"], found.multi_label
    ('a.wav', False)
    """

    source: str
    items: list
    class_names: list
    report: LoadReport
    hint: str = ""
    multi_label: bool = False


def _check_min_classes(min_classes):
    if min_classes not in (1, 2):
        raise ValueError(f"min_classes must be 1 or 2; got {min_classes!r}")


def _build(listing, sample_rate, on_error, min_classes=2):
    """Decodes a `Listing` into a `ClipSet`.

    Raises for an empty result or fewer than `min_classes` classes, warns
    once when files were skipped.
    """
    source, items, class_names, report, hint = (
        listing.source, listing.items, listing.class_names, listing.report, listing.hint)
    paths = [it["path"] for it in items]
    results = _decode_all(paths, on_error, report)
    rate = _resolve_rate(results, paths, sample_rate, source)
    keep = [i for i, r in enumerate(results) if r is not None]
    report.used = len(keep)
    if report.skipped:
        logger.warning(
            "%s: skipped %d of %d audio files (each is listed with its reason in "
            "ClipSet.report.skipped); first: %s",
            source,
            len(report.skipped),
            report.found,
            _describe(*report.skipped[0]),
        )
    if not keep:
        reasons = "; ".join(_describe(p, r) for p, r in report.skipped[:3])
        raise ValueError(
            f"{source}: no usable audio files ({report.found} found, "
            f"{len(report.skipped)} skipped{': ' + reasons if reasons else ''}){hint}"
        )
    waves = _resample_all(results, rate)
    items = [items[i] for i in keep]
    used_labels = sorted({it["label"] for it in items})
    if len(used_labels) < min_classes:
        raise ValueError(
            f"{source}: only one class ({class_names[used_labels[0]]!r}) has usable "
            f"audio; a classifier needs at least two{hint}"
        )
    folds = [it.get("fold") for it in items]
    groups = [it.get("group") for it in items]
    meta_keys = sorted({k for it in items for k in it.get("meta", {})})
    return ClipSet(
        [waves[i] for i in keep],
        [it["label"] for it in items],
        class_names,
        rate,
        paths=[it["path"] for it in items],
        folds=None if any(f is None for f in folds) else folds,
        groups=None if any(g is None for g in groups) else groups,
        meta={k: [it["meta"][k] for it in items] for k in meta_keys},
        report=report,
    )


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven",
                 "eight", "nine", "ten", "eleven", "twelve")


def natural_order(names):
    """Class names in the order a person expects, not alphabetical.

    Number words ("zero" ... "twelve") in counting order when every name is
    one; otherwise digits compare by value ("class2" before "class10") and
    letters case-blind.

    Example:

    >>> natural_order(["two", "zero", "one"])
    ['zero', 'one', 'two']
    >>> natural_order(["c10", "c9", "B"])
    ['B', 'c9', 'c10']
    """
    names = list(names)
    words = [n.lower() for n in names]
    if names and all(w in _NUMBER_WORDS for w in words):
        return sorted(names, key=lambda n: _NUMBER_WORDS.index(n.lower()))

    def key(name):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                for part in re.split(r"(\d+)", name) if part]

    return sorted(names, key=key)


def _normalise_extensions(extensions):
    if isinstance(extensions, str):
        extensions = (extensions,)
    return tuple("." + e.lower().lstrip(".") for e in extensions)


def from_folder(root, sample_rate=None, on_error="skip", extensions=AUDIO_EXTENSIONS,
                min_classes=2):
    """Loads a folder with one subfolder of audio files per class.

    Class names are the subfolder names in `natural_order` (number words in
    counting order, numbers by value); files are found recursively
    inside each class folder. Files with other extensions, and files directly
    in `root`, are listed in `report.ignored`; class folders without audio are
    reported as skipped.

    Args:
        root: The folder holding the class folders.
        sample_rate: Rate to resample every clip to; `None` keeps the files'
            rate, which must then be the same for all of them.
        on_error: `"skip"` (record and go on) or `"raise"` for files that
            cannot be decoded.
        extensions: File extensions treated as audio.
        min_classes: Classes with usable audio the set must have: 2 for
            training a classifier (the default), 1 to score a model on a
            set of one class (as `speechmix evaluate` does).

    Returns:
        A `ClipSet` (no folds, no groups).

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, name))
    ...     tone = np.zeros((800, 1), "float32")
    ...     tf.io.write_file(os.path.join(root, name, "a.wav"),
    ...                      tf.audio.encode_wav(tone, 8000))
    >>> clips = from_folder(root)
    >>> clips.class_names, clips.sample_rate
    (['cat', 'dog'], 8000)
    """
    _check_on_error(on_error)
    _check_min_classes(min_classes)
    return _build(_list_folder(root, extensions), sample_rate, on_error, min_classes)


def _list_folder(root, extensions=AUDIO_EXTENSIONS):
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Dataset folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"from_folder: {root} is not a folder")
    exts = _normalise_extensions(extensions)
    report = LoadReport()
    folders = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    class_dirs = [folders[name] for name in natural_order(folders)]
    # Dotfiles (.DS_Store, markers) are not data; anything else is listed.
    report.ignored.extend(
        str(p) for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")
    )
    class_names, items = [], []
    for folder in class_dirs:
        files = []
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() in exts:
                files.append(p)
            elif not p.name.startswith("."):
                report.ignored.append(str(p))
        if not files:
            report.skipped.append((str(folder), f"class folder has no {'/'.join(exts)} files"))
            continue
        label = len(class_names)
        class_names.append(folder.name)
        items.extend({"path": str(p), "label": label} for p in files)
    report.found = len(items)
    if not class_dirs:
        raise ValueError(
            f"from_folder: {root} has no class subfolders; expected one folder of "
            "audio files per class (root/CLASS/*.wav)"
        )
    hint = ""
    if len(class_names) == 1 and class_names[0] == "recordings":
        hint = f" (for the Free Spoken Digit Dataset, use 'fsdd:{root}')"
    return Listing(f"from_folder({root})", items, class_names, report, hint)


def _pick(columns, candidates):
    for c in candidates:
        if c in columns:
            return c
    return None


def from_csv(path, root=None, sample_rate=None, on_error="skip", min_classes=2):
    """Loads the clips listed in a CSV file.

    Columns (header row required, case-insensitive): `path` (also `filename`
    or `file`), a class column (`label`, `category` or `class`; or `target`
    alone), and optionally `fold` (int) and `group` (or `speaker`). ESC-50 /
    ESC-10's `meta.csv` (`path,fold,target,category`) works as is. When a
    numeric `target` column maps one-to-one onto the class names, it sets the
    class order (so ESC's own label indices are kept); otherwise class names
    are in `natural_order`. Without a group column, ESC-style file names
    (`{fold}-{source}-{take}.ogg`) give each clip its source recording as
    group, so that clips cut from one recording stay on one side of a
    `validation_split`. Listed files that are missing are skipped like corrupt ones.

    Args:
        path: The CSV file.
        root: Folder that relative paths are resolved against; defaults to
            the CSV's folder.
        sample_rate: Rate to resample every clip to; `None` keeps the files'
            rate, which must then be the same for all of them.
        on_error: `"skip"` or `"raise"` for files that cannot be decoded.
        min_classes: 2 (default) or 1, as for `from_folder`.

    Returns:
        A `ClipSet` with folds and groups when the CSV has those columns.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("a", "b"):
    ...     tf.io.write_file(os.path.join(root, name + ".wav"),
    ...                      tf.audio.encode_wav(np.zeros((800, 1), "float32"), 8000))
    >>> with open(os.path.join(root, "meta.csv"), "w") as f:
    ...     _ = f.write("path,label,fold\\na.wav,yes,1\\nb.wav,no,2\\n")
    >>> clips = from_csv(os.path.join(root, "meta.csv"))
    >>> clips.class_names, clips.folds.tolist()
    (['no', 'yes'], [1, 2])
    """
    _check_on_error(on_error)
    listing = _list_csv(path, root)
    if listing.multi_label:
        raise ValueError(
            f"from_csv: {path} is multi-label (a 'labels' column with several "
            "comma-separated labels per row); in-memory ClipSets hold one label per "
            "clip: stream it with keras_speechmix.audio.streaming.list_files(...) or "
            "`speechmix train --stream`"
        )
    _check_min_classes(min_classes)
    return _build(listing, sample_rate, on_error, min_classes)


def _csv_class_names(entries, label_col, target_col):
    """`(class names in label order, whether rows carry several labels)`."""
    # FSD50K-style tagging sets: a `labels` column, several labels per row.
    multi = label_col == "labels" and any("," in e["name"] for e in entries)
    if multi:
        for e in entries:
            e["names"] = [n.strip() for n in e["name"].split(",") if n.strip()]
        names = natural_order({n for e in entries for n in e["names"]})
    else:
        names = natural_order({e["name"] for e in entries})
    if target_col and not multi:
        pairs = {(e["name"], e["target"]) for e in entries}
        by_name = {n: t for n, t in pairs}
        targets = list(by_name.values())
        if (
            len(pairs) == len(names)
            and len(set(targets)) == len(names)
            and all(t.lstrip("-").isdigit() for t in targets)
        ):
            names = sorted(names, key=lambda n: int(by_name[n]))
    return names, multi


def _list_csv(path, root=None):
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    base = Path(root).expanduser() if root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"from_csv: {path} is empty (no header row)")
        columns = {c.strip().lower(): c for c in reader.fieldnames}
        rows = list(reader)
    path_col = _pick(columns, ("path", "filename", "file"))
    label_col = _pick(columns, ("label", "labels", "category", "class", "target"))
    if path_col is None or label_col is None:
        raise ValueError(
            f"from_csv: {path} needs a 'path' column and a 'label' (or 'category') "
            f"column; found columns {list(reader.fieldnames)}"
        )
    fold_col = _pick(columns, ("fold",))
    group_col = _pick(columns, ("group", "speaker"))
    target_col = _pick(columns, ("target",)) if label_col != "target" else None

    def cell(row, key, line):
        value = row.get(columns[key])
        value = "" if value is None else value.strip()
        if not value:
            raise ValueError(f"from_csv: {path} line {line}: empty '{columns[key]}' value")
        return value

    entries = []
    for line, row in enumerate(rows, start=2):
        if not any((v or "").strip() for v in row.values()):
            continue
        entry = {"path": cell(row, path_col, line), "name": cell(row, label_col, line),
                 "line": line}
        if fold_col:
            fold = cell(row, fold_col, line)
            try:
                entry["fold"] = int(fold)
            except ValueError:
                raise ValueError(
                    f"from_csv: {path} line {line}: fold {fold!r} is not an integer"
                ) from None
        if group_col:
            entry["group"] = cell(row, group_col, line)
        else:
            esc = ESC_NAME.match(Path(entry["path"]).stem)
            if esc:
                entry["group"] = esc["source"]
        if target_col:
            entry["target"] = (row.get(columns[target_col]) or "").strip()
        entries.append(entry)
    if not entries:
        raise ValueError(f"from_csv: {path} lists no files")

    names, multi = _csv_class_names(entries, label_col, target_col)
    label_of = {n: i for i, n in enumerate(names)}

    report = LoadReport(found=len(entries))
    items = []
    for e in entries:
        file = Path(e["path"]).expanduser()
        file = file if file.is_absolute() else base / file
        item = {"path": str(file),
                "label": [label_of[n] for n in e["names"]] if multi else label_of[e["name"]]}
        if "fold" in e:
            item["fold"] = e["fold"]
        if "group" in e:
            item["group"] = e["group"]
        items.append(item)
    items = _without_repeats(path, entries, items, report)
    return Listing(f"from_csv({path})", items, names, report, multi_label=multi)


def _without_repeats(path, entries, items, report):
    """`items` with each file once (files compared by resolved path).

    A file listed twice with different labels, or in two folds (so trained
    and tested on across the folds), is refused; a plain repeat is used once
    and its row reported in `report.skipped`.
    """
    first, kept = {}, []
    for entry, item in zip(entries, items):
        key = os.path.realpath(item["path"])
        if key not in first:
            first[key] = entry
            kept.append(item)
            continue
        seen = first[key]
        rows = f"lines {seen['line']} ({seen['path']}) and {entry['line']} ({entry['path']})"
        if seen["name"] != entry["name"]:
            raise ValueError(
                f"from_csv: {path} lists the file {item['path']} twice with different "
                f"labels, {seen['name']!r} and {entry['name']!r}, on {rows}: keep the "
                "row with the right label")
        if seen.get("fold") != entry.get("fold"):
            raise ValueError(
                f"from_csv: {path} lists the file {item['path']} in folds {seen['fold']} "
                f"and {entry['fold']}, on {rows}: it would be trained and tested on; "
                "keep one row")
        report.skipped.append((item["path"], (
            f"listed again on line {entry['line']} (first on line {seen['line']}, same "
            "label and fold): used once")))
    return kept


def _fsdd_recordings(root):
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"FSDD folder not found: {root}")
    if (root / "recordings").is_dir():
        return root / "recordings"
    if root.is_dir():
        return root
    raise NotADirectoryError(f"fsdd: {root} is not a folder")


def fsdd(root, sample_rate=None, on_error="skip", min_classes=2):
    """Loads the Free Spoken Digit Dataset (or any folder named like it).

    Files are `{digit}_{speaker}_{index}.wav`. Class names are the digits
    `"0"`..`"9"` found (so label == digit for the full dataset), groups are the
    speakers, and `meta["index"]` keeps the recording index for
    `fsdd_official_split`. WAV files named otherwise are recorded as skipped.

    Args:
        root: The folder holding `recordings/`, or the recordings folder.
        sample_rate: Rate to resample to (`None` keeps 8 kHz).
        on_error: `"skip"` or `"raise"` for files that cannot be decoded.
        min_classes: 2 (default) or 1, as for `from_folder`.

    Returns:
        A `ClipSet` with groups (speakers) and `meta["index"]`.

    Example:

    >>> clips = fsdd("~/data/free-spoken-digit-dataset")  # doctest: +SKIP
    >>> train, test = fsdd_official_split(clips)  # doctest: +SKIP
    """
    _check_on_error(on_error)
    _check_min_classes(min_classes)
    return _build(_list_fsdd(root), sample_rate, on_error, min_classes)


def _list_fsdd(root):
    folder = _fsdd_recordings(root)
    report = LoadReport()
    parsed = []
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        if p.suffix.lower() != ".wav":
            report.ignored.append(str(p))
            continue
        m = FSDD_NAME.match(p.stem)
        if not m:
            report.skipped.append(
                (str(p), "file name does not match {digit}_{speaker}_{index}.wav")
            )
            continue
        parsed.append((p, m))
    report.found = len(parsed) + len(report.skipped)
    digits = sorted({m["digit"] for _, m in parsed})
    label_of = {d: i for i, d in enumerate(digits)}
    items = [
        {
            "path": str(p),
            "label": label_of[m["digit"]],
            "group": m["speaker"],
            "meta": {"index": int(m["index"])},
        }
        for p, m in parsed
    ]
    return Listing(f"fsdd({folder})", items, digits, report)


BUILTIN_DIGITS = Path(__file__).parents[1] / "data" / "fsdd_digits.npz"


def builtin_digits():
    """Real spoken digits shipped with the package: no download, no network.

    480 recordings from the Free Spoken Digit Dataset (Zohar Jackson et al.,
    CC BY-SA 4.0; `keras_speechmix/audio/data/FSDD_ATTRIBUTION.txt` and
    `FSDD_LICENSE.txt` lie beside the data): takes 0-7 of each digit by each
    of its six speakers (george, jackson, lucas, nicolas, theo, yweweler),
    mono at 8 kHz, the WAV files' 16-bit samples unchanged (scaled by
    1/32768, as soundfile reads them). `speechmix demo` trains on four of
    the speakers and tests on one it never heard.

    Returns:
        A `ClipSet` like `fsdd`'s: class names `"0"`..`"9"` (label ==
        digit), groups = speakers, `meta["index"]` = FSDD's take number,
        paths = the FSDD file names.

    Example:

    >>> clips = builtin_digits()
    >>> len(clips), clips.sample_rate, sorted(set(clips.groups))[:2]
    (480, 8000, ['george', 'jackson'])
    """
    with np.load(BUILTIN_DIGITS, allow_pickle=False) as data:
        samples, lengths = data["samples"], data["lengths"]
        digits, takes = data["digits"], data["takes"]
        speakers = data["speakers"][data["speaker"]]
        rate = int(data["sample_rate"])
    waves = np.split(samples.astype(np.float32) / 32768.0, np.cumsum(lengths)[:-1])
    paths = [f"{d}_{s}_{t}.wav" for d, s, t in zip(digits, speakers, takes)]
    return ClipSet(waves, digits.astype(np.int32), [str(d) for d in range(10)], rate,
                   paths=paths, groups=speakers.tolist(), meta={"index": takes.astype(np.int64)},
                   report=LoadReport(found=len(waves), used=len(waves)))


def listing(spec, extensions=AUDIO_EXTENSIONS):
    """The files and labels a dataset spec names, before decoding (see `load`).

    Example:

    >>> files = listing("fsdd:~/data/fsdd")  # doctest: +SKIP
    >>> len(files.items), files.class_names[:3]  # doctest: +SKIP
    (3000, ['0', '1', '2'])
    """
    text = os.fspath(spec)
    if text.lower().startswith("fsdd:"):
        return _list_fsdd(text[5:])
    path = _existing(text)
    if path.is_dir():
        return _list_folder(path, extensions)
    return _list_csv(path)


def _existing(text):
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Dataset not found: {text} (expected a folder of class folders, a .csv "
            "file, or fsdd:DIR)"
        )
    if not path.is_dir() and path.suffix.lower() != ".csv":
        raise ValueError(
            f"Cannot load dataset {text}: expected a folder of class folders, a .csv "
            "file, or fsdd:DIR"
        )
    return path


def load(spec, **kwargs):
    """Loads a dataset from a spec string.

    Args:
        spec: A folder of class subfolders (`from_folder`), a `.csv` file
            (`from_csv`), or `"fsdd:DIR"` (`fsdd`).
        **kwargs: Passed to the loader (`sample_rate`, `on_error`,
            `min_classes`, ...).

    Returns:
        A `ClipSet`.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the spec is neither a folder nor a CSV file, or the data
            has no usable file or fewer than `min_classes` classes.

    Example:

    >>> clips = load("fsdd:~/data/fsdd", sample_rate=16000)  # doctest: +SKIP
    >>> clips = load("~/sounds/my_classes")  # doctest: +SKIP
    """
    text = os.fspath(spec)
    if text.lower().startswith("fsdd:"):
        return fsdd(text[5:], **kwargs)
    path = _existing(text)
    if path.is_dir():
        return from_folder(path, **kwargs)
    return from_csv(path, **kwargs)
