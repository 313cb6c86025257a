"""Small audio datasets held in memory: the clip set, its loaders, its splits.

- `clips`: `ClipSet` (decoded mono clips with labels, folds, groups) and
  `LoadReport` (what a load found, used and skipped, with reasons).
- `loaders`: `from_folder`, `from_csv`, `fsdd`, `builtin_digits`, `load`
  (any of these from one spec string), `listing`.
- `splits`: `split_by_fold`, `split_by_group`, `fsdd_official_split`,
  `stratified_split`, `validation_split`.

Example:

>>> from keras_speechmix.audio import datasets
>>> clips = datasets.builtin_digits()
>>> train, test = datasets.fsdd_official_split(clips)
>>> len(train) + len(test) == len(clips)
True
"""

from keras_speechmix.audio.datasets.clips import (
    ClipSet, LoadReport, skip_reason, trim_wave, write_skipped)
from keras_speechmix.audio.datasets.loaders import (
    AUDIO_EXTENSIONS, ESC_NAME, FSDD_NAME, BUILTIN_DIGITS, Listing, builtin_digits,
    from_csv, from_folder, fsdd, listing, load, natural_order)
from keras_speechmix.audio.datasets.splits import (
    fsdd_official_split, split_by_fold, split_by_group, stratified_split, validation_split)

__all__ = [
    "ClipSet", "LoadReport", "trim_wave", "skip_reason", "write_skipped",
    "from_folder", "natural_order", "from_csv", "fsdd", "builtin_digits", "load",
    "listing", "Listing", "AUDIO_EXTENSIONS", "FSDD_NAME", "ESC_NAME", "BUILTIN_DIGITS",
    "split_by_fold", "split_by_group", "fsdd_official_split", "stratified_split",
    "validation_split",
]
