"""CBNet vs the large baseline across training seeds, on digits-hard.

The strategy benchmark (``benchmarks.strategies``) trains with one seed; a gap of a few samples
there can be the seed's luck. This run trains, for each ``--seeds`` value, the large baseline
(``large_cnn``, with ``tiny_cnn`` as the pool's required second member) and CBNet with the strategy
benchmark's settings (40 pool epochs; 300 converter and 10 fine-tuning epochs; the ``hard``
augmentation), and measures both on the test split (``--split val``: the validation split, to
compare CBNet settings without looking at the test split) plus ``--redraws`` new draws of its
digits (``calibration.datasets.hard_redraws``), with the same paired statistics as the strategy
benchmark: the gap (baseline - CBNet accuracy), its discordant counts, McNemar p and a 95%
bootstrap interval (draws of one digit resampled together). Accuracy only: speed is the strategy
benchmark's. ``--cbnet-epochs`` / ``--finetune-epochs`` train CBNet with other settings (the
baseline stays the same: training is deterministic per seed).

    python -m benchmarks.cbnet_seeds [--quick] [--seeds 0,1,2] [--split test|val] [--redraws 8]
        [--cbnet-epochs 300] [--finetune-epochs 10] [--workdir DIR]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks.strategies import (
    AUGMENT,
    REDRAWS,
    Settings,
    augment_for,
    cbnet_config,
    paired_gap,
    predict,
    redraws,
    stacked,
)

DATA = "digits-hard"


def train_seed(data, folder, seed, settings, log):
    """Train the baseline and CBNet with ``seed`` into ``folder``; returns their ONNX paths."""
    from export.recipes.cbnet import train_cbnet
    from export.recipes.pool import PoolConfig, train_pool
    augment = augment_for(DATA)
    start = time.perf_counter()
    pool = train_pool(data, os.path.join(folder, "pool"),
                      PoolConfig(models=["tiny_cnn"], baseline="large_cnn",
                                 epochs=settings.pool_epochs, augment=augment, seed=seed),
                      progress=False)
    cbnet = train_cbnet(data, os.path.join(folder, "cbnet"), cbnet_config(settings, DATA, seed),
                        progress=False)
    log("  seed {}: trained in {:.0f} s".format(seed, time.perf_counter() - start))
    return (os.path.join(folder, "pool", pool.entry("large_cnn")["onnx"]),
            os.path.join(folder, "cbnet", cbnet.to_dict()["files"]["cbnet"]))


def evaluate(paths, images, labels, batch):
    """Per sample: is each model (ONNX Runtime, one thread) right."""
    from engines.load import load_engine
    from toolkit.strategies import Single
    right = []
    for path in paths:
        engine = load_engine(path, threads=1)
        try:
            right.append(np.argmax(predict(Single(engine), images, batch), 1) == labels)
        finally:
            engine.close()
    return right


def parse_seeds(text):
    """``"0,1,2"`` or ``"0-7"`` (or a mix: ``"0-2,5"``) -> a list of ints; ValueError if bad."""
    seeds = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if dash:
            if int(high) < int(low):
                raise ValueError(part)
            seeds.extend(range(int(low), int(high) + 1))
        else:
            seeds.append(int(low))
    return seeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer epochs, two seeds (a smoke run, not a result)")
    parser.add_argument("--seeds", default=None,
                        help="comma separated, or a range like 0-7 (default 0,1,2; quick 0,1)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="measure on this split and its redraws (default %(default)s; val: "
                             "for choosing settings)")
    parser.add_argument("--redraws", type=int, default=REDRAWS,
                        help="new draws of the split's digits added (default %(default)s)")
    parser.add_argument("--cbnet-epochs", type=int, default=None,
                        help="CBNet converter epochs (default: the strategy benchmark's, 300)")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="CBNet fine-tuning epochs (default: the strategy benchmark's, 10)")
    parser.add_argument("--workdir", default=None,
                        help="where models are written (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.redraws < 0:
        parser.error("--redraws must be >= 0")
    for name in ("cbnet_epochs", "finetune_epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error("--{} must be >= 1".format(name.replace("_", "-")))
    try:
        seeds = parse_seeds(args.seeds or ("0,1" if args.quick else "0,1,2"))
    except ValueError:
        parser.error("--seeds must be integers separated by commas or a range like 0-7, got {!r}"
                     .format(args.seeds))
    import torch
    torch.set_num_threads(1)
    from export.recipes.common import load_recipe_data
    settings = Settings(quick=args.quick)
    if args.cbnet_epochs is not None:
        settings.cbnet_epochs = args.cbnet_epochs
    if args.finetune_epochs is not None:
        settings.cbnet_finetune_epochs = args.finetune_epochs

    def log(text):
        print(text, file=sys.stderr, flush=True)

    data = load_recipe_data(DATA)
    split = data.test if args.split == "test" else data.val
    images, labels, clusters = stacked([split] + redraws(DATA, args.split, args.redraws))
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-cbnet-seeds-")
    started = time.perf_counter()
    rows = []
    try:
        for seed in seeds:
            paths = train_seed(data, os.path.join(workdir, "seed{}".format(seed)), seed, settings,
                               log)
            base_right, cbnet_right = evaluate(paths, images, labels, settings.batch)
            rows.append((seed, float(base_right.mean()), float(cbnet_right.mean()),
                         paired_gap(base_right, cbnet_right, clusters)))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("CBNet vs large_cnn on {} ({} samples: the {} split and {} redraws), {} pool / {} "
          "converter epochs ({} fine-tuning), '{}' augmentation{}".format(
              DATA, len(labels), args.split, args.redraws, settings.pool_epochs,
              settings.cbnet_epochs,
              settings.cbnet_finetune_epochs, AUGMENT[DATA], " (--quick)" if args.quick else ""))
    print("  seed  baseline   CBNet   gap (pts)  95% interval      only base / only CBNet  McNemar p")
    for seed, base_acc, cbnet_acc, gap in rows:
        print("  {:>4}  {:.4f}    {:.4f}  {:+.2f}      [{:+.2f}, {:+.2f}]    {:>4} / {:<4}            "
              "{:.2g}".format(seed, base_acc, cbnet_acc, gap["gap"] * 100, gap["ci95"][0] * 100,
                              gap["ci95"][1] * 100, gap["only_baseline_right"],
                              gap["only_other_right"], gap["mcnemar_p"]))
    gaps = np.array([row[3]["gap"] for row in rows]) * 100
    print("  mean     {:.4f}    {:.4f}  {:+.2f} pts over {} seeds (min {:+.2f}, max {:+.2f}); "
          "total {:.0f} s".format(np.mean([row[1] for row in rows]),
                                  np.mean([row[2] for row in rows]), gaps.mean(), len(gaps),
                                  gaps.min(), gaps.max(), time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
