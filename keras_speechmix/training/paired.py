"""Paired comparison of two classifiers scored on the same clips.

McNemar's exact test on the clips only one of the two gets right: the
test every claim of the benchmarks, the main job and `speechmix evaluate
--shift` rests on (a difference of error rates alone, on a few hundred
clips, is mostly noise).

Example:

>>> test = mcnemar([1, 1, 1, 1, 0], [0, 0, 0, 0, 0])
>>> test["a_only"], test["b_only"], round(test["p"], 3)
(4, 0, 0.125)
"""

import math

import numpy as np

__all__ = ["compare_shifts", "mcnemar", "shift_lines", "shift_score", "verdict"]


def mcnemar(correct_a, correct_b):
    """Exact McNemar test of two classifiers scored on the same clips.

    `correct_a`, `correct_b`: booleans per clip, paired. Returns a dict with
    `a_only` and `b_only` (clips only one of them gets right) and the
    two-sided exact binomial `p` on those discordant clips (1.0 when there
    are none): the paired test the claims rest on.

    Example:

    >>> mcnemar([1, 0, 1], [1, 0, 1])["p"]
    1.0
    """
    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: unpaired predictions, shapes {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n, k = a_only + b_only, min(a_only, b_only)
    # Integer arithmetic: 2.0 ** n overflows a float past 1,023 discordant clips.
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": min(1.0, 2.0 * tail)}


def verdict(error_a, error_b, p, level=0.05):
    """Words for a paired difference: who has less error, or no resolved one.

    Example:

    >>> verdict(0.2, 0.3, 0.01)
    'lower error, resolved (McNemar p = 0.010)'
    """
    if p >= level:
        return f"no resolved difference (McNemar p = {p:.2f})"
    better = "lower" if error_a < error_b else "higher"
    return f"{better} error, resolved (McNemar p = {p:.3f})"


def shift_score(probabilities, labels):
    """Error, ECE, NLL and per-clip correctness of one scoring of clips: an
    entry of `compare_shifts`' `shifts`.

    Example:

    >>> score = shift_score(np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0]))
    >>> score["error"], score["correct"]
    (0.5, [1, 0])
    """
    from keras_speechmix import calibration

    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    correct = probabilities.argmax(axis=1) == labels
    return {"error": float(1.0 - np.mean(correct)),
            "ece": calibration.expected_calibration_error(probabilities, labels),
            "nll": calibration.negative_log_likelihood(probabilities, labels),
            "correct": correct.astype(int).tolist()}


def _method(run):
    return run.get("method", run.get("mix"))


def compare_shifts(runs, methods, baseline="none"):
    """Per shift and method: error over seeds, calibration, and the paired
    test against `baseline`, from `train_clips` results.

    Each run needs `seed`, its method (`method` or `mix`), optionally `fold`
    (a seed's folds are pooled), and `shifts`: `{shift: {"error", "ece",
    "correct"}}` as `train_clips` scores them (the clean clips under
    "clean"). Runs of two methods with the same seed and fold scored the
    same clips under the same shifts: McNemar's test pools those pairs.

    Returns:
        `{shift: {method: {"error_mean", "error_se", "error_per_seed",
        "ece_mean", "ratio" (error / baseline's), "mcnemar", "verdict"}}}`.

    Example:

    >>> runs = [{"mix": m, "seed": s, "shifts": {"clean": {
    ...     "error": e, "ece": 0.1, "correct": c}}}
    ...     for m, e, c in (("none", 0.5, [1, 0]), ("speechmix", 0.0, [1, 1]))
    ...     for s in (0, 1)]
    >>> row = compare_shifts(runs, ["none", "speechmix"])["clean"]["speechmix"]
    >>> row["error_mean"], row["mcnemar"]["a_only"], row["ratio"]
    (0.0, 2, 0.0)
    """
    shifts = []
    for run in runs:
        shifts += [s for s in run.get("shifts", {}) if s not in shifts]
    table = {}
    for shift in shifts:
        table[shift] = rows = {}
        scored = {(_method(r), r["seed"], r.get("fold")): r["shifts"][shift]
                  for r in runs if shift in r.get("shifts", {})}
        for method in methods:
            mine = {k: v for k, v in scored.items() if k[0] == method}
            if not mine:
                continue
            seeds = sorted({k[1] for k in mine})
            per_seed = {}
            for seed in seeds:
                correct = np.concatenate([v["correct"] for k, v in mine.items() if k[1] == seed])
                per_seed[seed] = float(1.0 - np.mean(correct))
            errors = np.array(list(per_seed.values()))
            rows[method] = {
                "error_mean": float(errors.mean()),
                "error_se": float(errors.std(ddof=1) / np.sqrt(len(errors)))
                if len(errors) > 1 else None,
                "error_per_seed": per_seed,
                "ece_mean": float(np.mean([v["ece"] for v in mine.values()]))}
        base = rows.get(baseline)
        for method, row in rows.items():
            if method == baseline or base is None:
                continue
            pairs = [k for k in scored if k[0] == method and (baseline,) + k[1:] in scored]
            if not pairs:
                continue
            test = mcnemar(np.concatenate([scored[k]["correct"] for k in pairs]),
                           np.concatenate([scored[(baseline,) + k[1:]]["correct"]
                                           for k in pairs]))
            row.update(mcnemar=test, verdict=verdict(row["error_mean"], base["error_mean"],
                                                     test["p"]),
                       ratio=row["error_mean"] / base["error_mean"]
                       if base["error_mean"] else None)
    return table


def shift_lines(table, methods, baseline="none"):
    """`compare_shifts`' table as text lines: one row per shift, each
    method's error (mean ± s.e. over seeds), then each method against
    `baseline`: the error ratio, the clips only it : only the baseline gets
    right, McNemar's p and whether that resolves the difference (p < 0.05).

    Example:

    >>> table = {"clean": {"none": {"error_mean": 0.5, "error_se": None, "ece_mean": 0.1}}}
    >>> shift_lines(table, ["none"])[1].split()
    ['clean', '50.0']
    """
    lines = [f"{'shift':<14}" + "".join(f"{m + ' err %':>18}" for m in methods)
             + "".join(f"   {m + ' vs ' + baseline:<36}" for m in methods if m != baseline)]
    for shift, rows in table.items():
        cells = ""
        for m in methods:
            row = rows.get(m)
            if row is None:
                cells += f"{'-':>18}"
                continue
            spread = "" if row["error_se"] is None else f" ± {100 * row['error_se']:.1f}"
            cells += f"{100 * row['error_mean']:>11.1f}{spread:<7}"
        for m in methods:
            row = rows.get(m, {})
            if m == baseline or "mcnemar" not in row:
                continue
            test = row["mcnemar"]
            ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}x "
            words = "resolved" if test["p"] < 0.05 else "not resolved"
            cells += (f"   {ratio}{test['a_only']}:{test['b_only']} p={test['p']:.3f} "
                      f"{words:<12}")
        lines.append(f"{shift:<14}{cells}".rstrip())
    return lines
