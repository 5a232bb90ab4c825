""":class:`ModelEnergy`: the per-layer rows of an estimate, their totals, JSON and a text table."""
from energy_model.formulas import COMPUTE_KINDS, LEVELS, WEIGHTED_KINDS

UNITS_TEXT = "normalized units (one 16-bit MAC = 1; not calibrated)"


class ModelEnergy(object):
    """The estimate for one model: ``rows`` (:class:`LayerEnergy`, graph order) and totals.

    One inference is ``batch`` images: the model's own batch when its ONNX fixes one
    (``batch_fixed``), else ``config.batch``. ``total`` and the rows are per inference;
    ``per_image`` is the total divided by ``batch``. ``activations``: the measured activation
    sparsity used (None: every activation counted non-zero).

    Figures are in normalized units unless ``config.mj_per_unit`` is set (a calibration), in
    which case ``total_mj``, ``per_image_mj`` and every row's ``energy_mj`` are millijoules.
    """

    def __init__(self, rows, config, source=None, sha256=None, free_ops=None, batch=None,
                 batch_fixed=False, activations=None):
        self.rows = list(rows)
        self.config = config
        self.batch = int(config.batch if batch is None else batch)
        self.batch_fixed = bool(batch_fixed)
        self.activations = activations
        self.source = source
        self.sha256 = sha256
        self.free_ops = dict(free_ops or {})
        self.energy = {key: sum(row.energy[key] for row in self.rows)
                       for key in LEVELS + ("mac", "total")}
        self.accesses = {level: sum(row.level_accesses(level) for row in self.rows)
                         for level in LEVELS}

    @property
    def total(self):
        """Energy per inference (``config.batch`` images) in normalized units."""
        return self.energy["total"]

    @property
    def per_image(self):
        """Energy per image in normalized units: the total over the computed batch."""
        return self.total / self.batch

    @property
    def per_image_mj(self):
        """Millijoules per image, or None when the model is not calibrated."""
        return self.per_image * self.config.mj_per_unit if self.calibrated else None

    @property
    def batch_note(self):
        """Why the computed batch differs from the requested one, or None."""
        if self.batch_fixed and self.batch != self.config.batch:
            return "the ONNX fixes the batch at {}; the requested batch {} does not apply".format(
                self.batch, self.config.batch)
        return None

    @property
    def calibrated(self):
        return self.config.mj_per_unit is not None

    @property
    def total_mj(self):
        """Millijoules per inference, or None when the model is not calibrated."""
        return self.total * self.config.mj_per_unit if self.calibrated else None

    @property
    def macs(self):
        return sum(row.macs for row in self.rows if row.kind in COMPUTE_KINDS)

    @property
    def dense_macs(self):
        return sum(row.dense_macs for row in self.rows if row.kind in COMPUTE_KINDS)

    @property
    def weights(self):
        return sum(row.weights for row in self.rows if row.kind in WEIGHTED_KINDS)

    @property
    def nonzero_weights(self):
        return sum(row.nonzero_weights for row in self.rows if row.kind in WEIGHTED_KINDS)

    def row(self, name):
        """The row named ``name`` (KeyError if none)."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self):
        scale = self.config.mj_per_unit
        data = {
            "source": self.source, "sha256": self.sha256, "config": self.config.to_dict(),
            "calibrated": self.calibrated,
            "unit": "mJ per inference" if self.calibrated else UNITS_TEXT,
            "batch": self.batch, "batch_fixed": self.batch_fixed, "batch_note": self.batch_note,
            "energy_units_per_image": self.per_image,
            "activation_sparsity": None if self.activations is None
            else self.activations.to_dict(),
            "totals": {"energy_units": dict(self.energy), "accesses": dict(self.accesses),
                       "macs": self.macs, "dense_macs": self.dense_macs, "weights": self.weights,
                       "nonzero_weights": self.nonzero_weights},
            "layers": [row.to_dict(scale) for row in self.rows],
            "free_ops": dict(self.free_ops),
        }
        if self.calibrated:
            data["totals"]["energy_mj"] = {k: v * scale for k, v in self.energy.items()}
            data["energy_mj_per_inference"] = self.total_mj
            data["energy_mj_per_image"] = self.per_image_mj
        return data

    def lines(self, name_width=30):
        """The per-layer table and the totals, as text lines."""
        cfg = self.config
        costs = cfg.costs
        unit = "mJ" if self.calibrated else "units"
        out = ["energy model of {} ({}-bit, batch {}{}; costs per access: DRAM {:g}, buffer {:g}, "
               "array {:g}, RF {:g}, MAC {:g})".format(
                   self.source, cfg.bits, self.batch, " fixed by the model" if self.batch_fixed
                   else "", costs.dram, costs.buffer, costs.array, costs.rf, costs.mac)]
        if self.batch_note:
            out.append("note: " + self.batch_note)
        if self.activations is None:
            out.append("activations: every one counted non-zero (give --data to measure their "
                       "zeros)")
        else:
            out.append("activations: " + self.activations.line())
        out.append("figures in {}".format(
            "mJ per inference (calibrated: {:.4g} mJ per unit)".format(cfg.mj_per_unit)
            if self.calibrated else UNITS_TEXT))
        zeros = self.activations is not None
        header = "{:<{w}} {:<18} {:>7} {:>13} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9} {:>6}".format(
            "layer", "op", "MACs", "weights nz/all", "in", "out", "DRAM", "buffer", "array", "RF",
            "energy", "share", w=name_width) + (" {:>6}".format("in 0s") if zeros else "")
        out += [header, "-" * len(header)]
        total = self.total or 1.0
        scale = cfg.mj_per_unit or 1.0
        for row in self.rows:
            op = row.op_type + ("*" if row.note else "")
            if row.kind in COMPUTE_KINDS and row.weights:
                weights = "{}/{}".format(_si(row.nonzero_weights), _si(row.weights))
            else:
                weights = "-"
            out.append("{:<{w}} {:<18} {:>7} {:>13} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9} {:>5.1f}%"
                       .format(_short(row.name, name_width), op[:18], _si(row.macs), weights,
                               _si(row.shape.input_count * row.shape.repeat),
                               _si(row.shape.output_count * row.shape.repeat),
                               _si(row.level_accesses("dram")), _si(row.level_accesses("buffer")),
                               _si(row.level_accesses("array")), _si(row.level_accesses("rf")),
                               _num(row.total * scale), 100.0 * row.total / total, w=name_width)
                       + (" {:>5.1f}%".format(100.0 * row.input_zero_fraction)
                          if zeros and row.kind in COMPUTE_KINDS else ""))
        out.append("-" * len(header))
        out.append("total: {} {} per inference of {} image{} = {} {} per image; MACs {} of {} "
                   "dense; weights {} non-zero of {}".format(
                       _num(self.total * scale), unit, self.batch, "" if self.batch == 1 else "s",
                       _num(self.per_image * scale), unit, _si(self.macs), _si(self.dense_macs),
                       _si(self.nonzero_weights), _si(self.weights)))
        parts = ["{} {} ({:.1f}%)".format(key, _num(self.energy[key] * scale),
                                          100.0 * self.energy[key] / total)
                 for key in ("mac", "rf", "array", "buffer", "dram")]
        out.append("by level: " + ", ".join(parts))
        if any(row.note for row in self.rows):
            out.append("* " + "; ".join(sorted({"{}: {}".format(r.op_type, r.note)
                                                for r in self.rows if r.note})))
        if self.free_ops:
            out.append("not costed (layout ops): " + ", ".join(
                "{} x{}".format(op, n) for op, n in sorted(self.free_ops.items())))
        return out


def _short(text, width):
    """``/features/features.1/features.1.0/Conv`` -> ``features.1.0/Conv``."""
    parts = [p for p in text.split("/") if p]
    text = "/".join(parts[-2:]) if len(parts) > 2 else "/".join(parts) or text
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _si(value):
    value = float(value)
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return "{:.3g}{}".format(value / factor, suffix)
    return "{:.3g}".format(value) if value != int(value) else str(int(value))


def _num(value):
    return "{:.4g}".format(value)
