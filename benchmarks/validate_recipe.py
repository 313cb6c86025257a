"""Choosing the recipe: SpeechMix variants on validation splits, paired.

How the default of `speechmix train` is chosen without touching a test
fold. Each seed holds out one ESC-10 fold (seed s: fold s mod 3 + 1) and
never looks at it; from the two training folds it cuts a validation part
by source recording (`experiment.hold_out_validation`, a quarter of the clips,
whole recordings, seeded), trains every variant on the rest with the
package's own `experiment.train_clips` and scores the validation clips
once, at the last epoch (10 crops), clean, 20 dB quieter, 10 dB louder
(clipped) and in noise (`NOISE_SHIFTS`, seeded). Every variant sees the same clips,
crops' seeds and weights' seed, so variants are compared clip by clip:
McNemar's exact test on the pooled validation clips of all seeds, against
the plain-training variant and against the `speechmix` method before
issue 18 (`previous_speechmix`).

A variant is a method of `experiment.METHODS` with overrides: its mixing
points, `partner_batches` arguments, the hidden-point gain source
(`HiddenMixup(gain=...)`) and whether mixing keeps the network's dropout.
Writes one JSON line per run (with per-clip correctness) and `--resume`s.

    python benchmarks/validate_recipe.py --seeds 0 1 2 3 4 \\
        --out results/validation/esc10_issue18.jsonl
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

from keras_speechmix.audio import datasets  # noqa: E402
from keras_speechmix.audio.shifts import apply_shift  # noqa: E402
from keras_speechmix.training import experiment  # noqa: E402

# name -> (base method, overrides). "waveform" is the input waveform (BC's
# rule), "input" the log-mel features, "blockN" after each conv block.
AUTHORS = dict(mixing=dict(ratio="bc", partners="different_class"),
               points=("waveform", "block1", "block2", "block3"))
VARIANTS = {
    "none": ("none", {}),
    # The `speechmix` method before issue 18 (NOTES turn 4): the log-mel input
    # and every block, mixed linearly.
    "previous_speechmix": ("speechmix", dict(points=("input", "block1", "block2", "block3"),
                                             hidden_gain="plan")),
    "bc": ("bc", {}),
    # The authors' form: waveform among the points, the sound rule with the
    # input clips' gains at hidden points ...
    "authors_plan_gain": ("speechmix", AUTHORS),
    # ... or with gains measured from the activations, as their code does.
    "authors_act_gain": ("speechmix", dict(AUTHORS, hidden_gain="activation")),
    # The authors' canonical point set (and InterMix's best): hidden points
    # only. The `speechmix` method's default since issue 18 (the same mixing,
    # with the sound rule set on the layers instead of gains in the plan).
    "authors_hidden_only": ("speechmix", dict(AUTHORS, points=("block1", "block2", "block3"),
                                              hidden_gain="activation")),
    "authors_with_dropout": ("speechmix", dict(AUTHORS, hidden_gain="activation",
                                               dropout=True)),
    # Issue 18's remaining questions, each against `none` and `speechmix`
    # (the method's default since issue 18) on the same clips:
    "speechmix": ("speechmix", {}),
    # ... mixing with the network's dropout kept;
    "speechmix_dropout": ("speechmix", dict(dropout=True)),
    # ... crops that carry sound (a crop more than 20 dB below its clip's
    # level is redrawn, `audio.sound_crop`), for both;
    "none_sound_crops": ("none", dict(sound_crops=20.0)),
    "speechmix_sound_crops": ("speechmix", dict(sound_crops=20.0)),
    # ... and half of the training recordings against all: does the gain
    # shrink as the training set grows?
    "none_half": ("none", dict(train_share=0.5)),
    "speechmix_half": ("speechmix", dict(train_share=0.5)),
    # Issue 27: the networks before LevelNormalization (the waveform fed as
    # it is), against the level-normalised default, clean and 20 dB quieter.
    "none_raw_level": ("none", dict(level_norm=False)),
    "speechmix_raw_level": ("speechmix", dict(level_norm=False)),
    # Issue 27: half the training clips made up to 10 dB louder and clipped
    # at full scale (`RandomClipping`), against the default, clean and
    # scored 10 dB louder (clipped).
    "none_random_clipping": ("none", dict(random_clipping=10.0)),
    "speechmix_random_clipping": ("speechmix", dict(random_clipping=10.0)),
}


# The noise shifts each run is also scored under (`audio.shifts`).
NOISE_SHIFTS = ("white:20", "white:10", "pink:10")


@contextlib.contextmanager
def variant(name):
    """Makes `name` a method `train_clips(mix=name)` trains, for the block."""
    base, over = VARIANTS[name]
    saved_methods = dict(experiment.METHODS)
    network = experiment.NETWORKS[experiment.RECIPE["model"]]
    saved_points, saved_recipe = dict(network["points"]), dict(experiment.RECIPE)
    saved_gains = dict(experiment.HIDDEN_GAINS)
    try:
        experiment.METHODS[name] = over.get("mixing", experiment.METHODS[base])
        network["points"][name] = over.get("points", saved_points.get(base, ()))
        experiment.HIDDEN_GAINS[name] = over.get("hidden_gain",
                                                 saved_gains.get(base, "plan"))
        if "dropout" in over:
            experiment.RECIPE["mix_dropout"] = over["dropout"]
        for key in ("level_norm", "random_clipping"):
            if key in over:
                experiment.RECIPE[key] = over[key]
        yield name if base != "none" else "none"
    finally:
        experiment.METHODS.clear()
        experiment.METHODS.update(saved_methods)
        network["points"].clear()
        network["points"].update(saved_points)
        experiment.RECIPE.clear()
        experiment.RECIPE.update(saved_recipe)
        experiment.HIDDEN_GAINS.clear()
        experiment.HIDDEN_GAINS.update(saved_gains)


def split_for(clips, seed, fraction):
    folds = sorted(set(clips.folds.tolist()))
    held = folds[seed % len(folds)]
    train, _ = datasets.split_by_fold(clips, held)
    fit, validation = experiment.hold_out_validation(train, fraction, seed=seed)
    return held, fit, validation


def one_run(clips, name, seed, fraction):
    held, fit, validation = split_for(clips, seed, fraction)
    over = VARIANTS[name][1]
    if "train_share" in over:  # whole recordings, seeded: the kept part of a hold-out
        fit, _ = experiment.hold_out_validation(fit, 1 - over["train_share"], seed=seed)
    with variant(name) as mix:
        model, result = experiment.train_clips(fit, None, mix=mix, seed=seed, verbose=0,
                                               sound_crops=over.get("sound_crops"),
                                               calibrate=False)
    length = result["input_length"]

    def correct_under(shift):
        # Seeded by the run's seed: every variant hears the same noisy clips.
        waves = apply_shift(validation.waveforms, shift, seed=seed)
        return (experiment.predict_clips(model, waves, length).argmax(axis=1)
                == validation.labels).astype(int)

    correct = correct_under("clean")
    # The same clips 20 dB quieter (does the variant hold its answer?), 10 dB
    # louder and clipped at full scale, and in noise, where mixing is
    # supposed to pay.
    quiet_correct = correct_under("level:-20")
    loud_correct = correct_under("level:+10")
    noisy = {shift: correct_under(shift).tolist() for shift in NOISE_SHIFTS}
    return {"variant": name, "seed": seed, "held_out_fold": held,
            "num_fit": len(fit), "num_validation": len(validation),
            "validation_error": float(1 - correct.mean()), "correct": correct.tolist(),
            "validation_error_quiet": float(1 - quiet_correct.mean()),
            "correct_quiet": quiet_correct.tolist(),
            "validation_error_loud": float(1 - loud_correct.mean()),
            "correct_loud": loud_correct.tolist(),
            "correct_noise": noisy,
            "train_accuracy": result["train_accuracy"], "epochs": result["epochs"],
            "mix_points": result["mix_points"], "seconds": result["seconds"],
            "final_loss": result["history"]["loss"][-1]}


def summary(runs, names, seeds, references=("none", "previous_speechmix")):
    """Pooled validation error per variant, and McNemar against the baselines
    (clean, level shifts, and in noise against the first baseline)."""
    by = {(r["variant"], r["seed"]): r for r in runs}
    complete = [s for s in seeds if all((n, s) in by for n in names)]
    lines = [f"seeds with every variant: {complete}"]

    def pooled_over_seeds(n, key):
        # None where a run predates `key` (older lines of the JSON lack it).
        values = [by[(n, s)].get(key) for s in complete]
        return None if None in values else np.concatenate(values).astype(bool)

    pooled = {n: pooled_over_seeds(n, "correct") for n in names} if complete else {}
    header = (f"{'variant':22s} {'error %':>8s} {'per seed':>30s}  McNemar vs "
              + " / vs ".join(references)
              + " (clips only this variant gets right : only the other)")
    lines.append(header)
    for n in names:
        if not complete:
            break
        err = 1 - pooled[n].mean()
        per = " ".join(f"{100 * by[(n, s)]['validation_error']:.1f}" for s in complete)
        cells = []
        for ref in references:
            if ref in pooled and ref != n:
                test = common.mcnemar(pooled[n], pooled[ref])
                cells.append(f"{test['a_only']}:{test['b_only']} p={test['p']:.2f}")
        line = f"{n:22s} {100 * err:8.1f} {per:>30s}  {' / '.join(cells)}"
        quiet = pooled_over_seeds(n, "correct_quiet")
        if quiet is not None:
            line += f"  | 20 dB quieter: {100 * (1 - quiet.mean()):.1f} %"
        loud = pooled_over_seeds(n, "correct_loud")
        if loud is not None:
            test = common.mcnemar(pooled[n], loud)
            line += (f"  | 10 dB louder, clipped: {100 * (1 - loud.mean()):.1f} % "
                     f"(clean right only : loud right only {test['a_only']}:{test['b_only']}, "
                     f"p={test['p']:.2f})")
        lines.append(line)
    noise = [n for n in names if complete
             and all("correct_noise" in by[(n, s)] for s in complete)]
    if noise and complete:
        lines.append(f"in noise, error % (McNemar vs {references[0]}: clips only this "
                     "variant gets right : only the other)")
        for shift in NOISE_SHIFTS:
            pooled_noise = {n: np.concatenate([by[(n, s)]["correct_noise"][shift]
                                               for s in complete]).astype(bool) for n in noise}
            cells = []
            for n in noise:
                cell = f"{n} {100 * (1 - pooled_noise[n].mean()):.1f}"
                if references[0] in pooled_noise and n != references[0]:
                    test = common.mcnemar(pooled_noise[n], pooled_noise[references[0]])
                    cell += f" ({test['a_only']}:{test['b_only']} p={test['p']:.2f})"
                cells.append(cell)
            lines.append(f"  {shift:9s} " + "; ".join(cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="share of the training folds held out for validation")
    parser.add_argument("--no-trim", action="store_true",
                        help="keep ESC's digital silence (default: trimmed, as the authors)")
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA))
    parser.add_argument("--out", default="results/validation/esc10_issue18.jsonl")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--against", nargs="+", default=["none", "previous_speechmix"],
                        choices=list(VARIANTS), help="the variants McNemar compares with")
    args = parser.parse_args(argv)
    common.hide_gpus()
    out = Path(args.out)
    runs = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    trim = not args.no_trim
    done = {(r["variant"], r["seed"]) for r in runs if r.get("trim", True) == trim}
    if not args.summary_only:
        rate = experiment.NETWORKS[experiment.RECIPE["model"]]["sample_rate"]
        clips = common.load_esc10(args.data_root, rate, trim=trim)
        started = time.perf_counter()
        for seed in args.seeds:  # seeds outermost: a stopped sweep leaves whole seeds
            for name in args.variants:
                if (name, seed) in done:
                    continue
                run = one_run(clips, name, seed, args.fraction)
                run["trim"] = trim
                runs.append(run)
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("a") as handle:
                    handle.write(json.dumps(run) + "\n")
                print(f"[{(time.perf_counter() - started) / 60:5.1f} min] seed {seed} "
                      f"{name:22s} validation error {100 * run['validation_error']:5.1f} % "
                      f"({run['num_validation']} clips; training clips "
                      f"{100 * run['train_accuracy']:.0f} %, {run['seconds']:.0f} s)", flush=True)
    print(summary([r for r in runs if r.get("trim", True) == trim], args.variants, args.seeds,
                  args.against))


if __name__ == "__main__":
    main()
