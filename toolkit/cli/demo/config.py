"""The demo's typed settings (``toolkit demo`` options map onto :class:`DemoConfig`)."""
from basics.errors import InputError

BUNDLED_DATASETS = ("digits", "digits-hard")


class DemoConfig(object):
    """What the demo runs and how long it trains.

    ``datasets``: bundled names or one image folder; ``out_dir``: where stages and ``report/``
    go; ``pool_models`` + ``baseline`` and ``epochs``: the pool; ``cbnet_epochs`` /
    ``finetune_epochs``: CBNet's converter and its classifier's fine-tuning; ``prune_rounds`` /
    ``prune_finetune_epochs``: energy-aware channel pruning of the baseline;
    ``calibration_samples``: INT8 calibration; ``max_batch``: engines' and runs' batch;
    ``duplicate``: the share of the test split shown twice (the pair paper's protocol);
    ``repeats``: runs per strategy (each batch's median time is kept); ``power``: a PowerConfig
    (None: auto); ``fresh``: redo every stage; ``input_shape``: (C, H, W) for an image folder
    (None: from its first image)."""

    def __init__(self, datasets=BUNDLED_DATASETS, out_dir="demo-out", pool_models=("flat_cnn",
                 "flat_resnet"), baseline="large_cnn", epochs=30, cbnet_epochs=40,
                 finetune_epochs=3, prune_rounds=2, prune_finetune_epochs=2, calibration_samples=256, max_batch=32,
                 duplicate=1.0, repeats=3, backend="auto", power=None, fresh=False,
                 input_shape=None, seed=0, progress=True):
        for name, value in (("epochs", epochs), ("CBNet epochs", cbnet_epochs),
                            ("fine-tuning epochs", finetune_epochs),
                            ("repeats", repeats), ("calibration samples", calibration_samples),
                            ("max batch", max_batch)):
            if int(value) < 1:
                raise InputError("{} must be at least 1, got {}".format(name, value))
        for name, value in (("prune rounds", prune_rounds),
                            ("prune fine-tuning epochs", prune_finetune_epochs)):
            if int(value) < 0:
                raise InputError("{} must be 0 or more, got {}".format(name, value))
        if not 0.0 <= float(duplicate) <= 1.0:
            raise InputError("duplicate share must be in [0, 1], got {}".format(duplicate))
        if not datasets:
            raise InputError("the demo needs at least one data set")
        self.datasets = tuple(datasets)
        self.out_dir = out_dir
        self.pool_models = tuple(pool_models)
        self.baseline = baseline
        self.epochs = int(epochs)
        self.cbnet_epochs = int(cbnet_epochs)
        self.finetune_epochs = int(finetune_epochs)
        self.prune_rounds = int(prune_rounds)
        self.prune_finetune_epochs = int(prune_finetune_epochs)
        self.calibration_samples = int(calibration_samples)
        self.max_batch = int(max_batch)
        self.duplicate = float(duplicate)
        self.repeats = int(repeats)
        self.backend = backend
        self.power = power
        self.fresh = bool(fresh)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.seed = int(seed)
        self.progress = progress

    def training_settings(self):
        """Everything that changes what the training stages produce (the cache keys)."""
        return {"pool_models": list(self.pool_models), "baseline": self.baseline,
                "epochs": self.epochs, "cbnet_epochs": self.cbnet_epochs,
                "finetune_epochs": self.finetune_epochs, "seed": self.seed,
                "input_shape": None if self.input_shape is None else list(self.input_shape)}
