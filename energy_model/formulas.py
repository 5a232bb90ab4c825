"""The per-layer formulas of the energy model: :class:`LayerShape` + weights -> :class:`LayerEnergy`.

This is the ONE implementation of the access-count and energy formulas: ``estimate_onnx`` (ONNX
graphs) and the energy-aware pruning (``export.pruning``, torch modules mapped onto the exported
graph) both call :func:`layer_energy`. The model and every assumption are written down in the
docstring of :mod:`energy_model`.
"""
import numpy as np

from basics.errors import InputError

LEVELS = ("dram", "buffer", "array", "rf")
WEIGHT_FORMATS = ("auto", "dense", "sparse")
# the kinds of layers the model knows; "free" layers (reshape, flatten ...) cost nothing
KINDS = ("conv", "conv_transpose", "fc", "matmul", "eltwise", "pool", "free")
# kinds costed by the convolution formula (MACs against a weight tensor), and those whose weights
# are parameters (a MatMul of two activations has none)
COMPUTE_KINDS = ("conv", "conv_transpose", "fc", "matmul")
WEIGHTED_KINDS = ("conv", "conv_transpose", "fc")


class AccessCosts(object):
    """Energy of one 16-bit access at each level and of one 16-bit MAC, relative to the MAC.

    Defaults are the normalized costs of Yang, Chen and Sze (CVPR 2017, from Eyeriss, 65 nm):
    DRAM 200, global buffer 6, inter-PE array 2, register file 1, MAC 1.
    """

    def __init__(self, dram=200.0, buffer=6.0, array=2.0, rf=1.0, mac=1.0):
        values = {"dram": dram, "buffer": buffer, "array": array, "rf": rf, "mac": mac}
        for name, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InputError("access cost '{}' must be a number >= 0, got {!r}".format(name, value))
        self.dram = float(dram)
        self.buffer = float(buffer)
        self.array = float(array)
        self.rf = float(rf)
        self.mac = float(mac)

    def level(self, name):
        return getattr(self, name)

    def to_dict(self):
        return {"dram": self.dram, "buffer": self.buffer, "array": self.array, "rf": self.rf,
                "mac": self.mac}


class EnergyModelConfig(object):
    """Settings of the energy model (``None`` means the default).

    ``bits``: data and MAC width (16 is the paper's; 8 moves half the bytes); ``batch``: the batch
    a dynamic batch axis is set to; ``costs``: :class:`AccessCosts`; ``filters_per_pass``: output
    channels the PE array serves from one read of an input (buffer reuse of inputs, multicast of an
    input row); ``channels_per_pass``: input channels whose partial sums are accumulated inside the
    array before they spill to the buffer; ``index_bits``: bits of the index stored with each
    non-zero weight in the sparse format; ``weight_format``: ``auto`` (the smaller of dense and
    sparse), ``dense`` or ``sparse``; ``mj_per_unit``: the calibration (millijoules per normalized
    unit) -- set it (see :func:`energy_model.fit_calibration`) to get figures in mJ.
    """

    def __init__(self, bits=16, batch=1, costs=None, filters_per_pass=16, channels_per_pass=16,
                 index_bits=4, weight_format="auto", mj_per_unit=None):
        if not _is_int(bits) or not 1 <= bits <= 32:
            raise InputError("bits must be an integer from 1 to 32 (8 or 16 usually), got {!r}".format(
                bits))
        for name, value in (("batch", batch), ("filters_per_pass", filters_per_pass),
                            ("channels_per_pass", channels_per_pass)):
            if not _is_int(value) or value < 1:
                raise InputError("{} must be a positive integer, got {!r}".format(name, value))
        if not _is_int(index_bits) or index_bits < 0:
            raise InputError("index_bits must be an integer >= 0, got {!r}".format(index_bits))
        if weight_format not in WEIGHT_FORMATS:
            raise InputError("weight_format must be one of {}, got {!r}".format(
                WEIGHT_FORMATS, weight_format))
        if mj_per_unit is not None and (not isinstance(mj_per_unit, (int, float))
                                        or not mj_per_unit > 0):
            raise InputError("mj_per_unit must be a positive number, got {!r}".format(mj_per_unit))
        if costs is None:
            costs = AccessCosts()
        elif isinstance(costs, dict):
            costs = AccessCosts(**costs)
        elif not isinstance(costs, AccessCosts):
            raise InputError("costs must be an AccessCosts, got {}".format(type(costs).__name__))
        self.bits = int(bits)
        self.batch = int(batch)
        self.costs = costs
        self.filters_per_pass = int(filters_per_pass)
        self.channels_per_pass = int(channels_per_pass)
        self.index_bits = int(index_bits)
        self.weight_format = weight_format
        self.mj_per_unit = None if mj_per_unit is None else float(mj_per_unit)

    @property
    def data_scale(self):
        """Energy of one access relative to a 16-bit access: bits / 16 (bytes moved)."""
        return self.bits / 16.0

    @property
    def mac_scale(self):
        """Energy of one MAC relative to a 16-bit MAC: (bits / 16) ** 2 (array multiplier)."""
        return (self.bits / 16.0) ** 2

    def calibrated(self, mj_per_unit):
        """A copy of this config with the calibration ``mj_per_unit`` set."""
        data = self.to_dict()
        data["mj_per_unit"] = mj_per_unit
        data["costs"] = AccessCosts(**data["costs"])
        return EnergyModelConfig(**data)

    def to_dict(self):
        return {"bits": self.bits, "batch": self.batch, "costs": self.costs.to_dict(),
                "filters_per_pass": self.filters_per_pass,
                "channels_per_pass": self.channels_per_pass, "index_bits": self.index_bits,
                "weight_format": self.weight_format, "mj_per_unit": self.mj_per_unit}

    def key(self):
        """A hashable key of everything that changes the estimate (for caches)."""
        data = self.to_dict()
        data["costs"] = tuple(sorted(data["costs"].items()))
        return tuple(sorted(data.items()))

    def __repr__(self):
        return "EnergyModelConfig({})".format(", ".join(
            "{}={!r}".format(k, v) for k, v in sorted(self.to_dict().items())))


class LayerShape(object):
    """The geometry of one layer, for one image (``batch`` images are processed per inference).

    conv / fc / matmul: input ``in_channels x in_hw``, output ``out_channels x out_hw``, kernel
    ``kernel_hw``, ``groups``; conv_transpose: the same fields, its kernel applied at every *input*
    pixel (scattered onto the output), weights laid out (C_in, C_out / groups, R, S) as in ONNX;
    an fc layer is a 1x1 convolution on a 1x1 map (``in_hw`` = (T, 1) for T rows of a MatMul);
    ``repeat`` counts independent copies (batched MatMul of two activations).
    eltwise / pool: ``operands`` activation inputs, ``ops_per_output`` operations per output value
    (pooling: the window size).
    """

    def __init__(self, kind, batch=1, in_channels=1, in_hw=(1, 1), out_channels=1, out_hw=(1, 1),
                 kernel_hw=(1, 1), groups=1, bias=False, operands=1, ops_per_output=1, repeat=1):
        if kind not in KINDS:
            raise InputError("unknown layer kind {!r}; one of {}".format(kind, KINDS))
        self.kind = kind
        self.batch = int(batch)
        self.in_channels = int(in_channels)
        self.in_hw = (int(in_hw[0]), int(in_hw[1]))
        self.out_channels = int(out_channels)
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self.kernel_hw = (int(kernel_hw[0]), int(kernel_hw[1]))
        self.groups = int(groups)
        self.bias = bool(bias)
        self.operands = int(operands)
        self.ops_per_output = int(ops_per_output)
        self.repeat = int(repeat)
        if kind in COMPUTE_KINDS and (self.in_channels % self.groups
                                      or self.out_channels % self.groups):
            raise InputError("channels {} -> {} do not divide into {} groups".format(
                self.in_channels, self.out_channels, self.groups))

    @property
    def weight_shape(self):
        """(M, C / groups, R, S) of a conv/fc/matmul layer; (C, M / groups, R, S) of a
        conv_transpose (the ONNX layouts)."""
        if self.kind == "conv_transpose":
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_hw
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_hw

    @property
    def positions_hw(self):
        """Where the kernel is applied, (E, F) in the formulas: every output pixel of a
        convolution, every input pixel of a transposed one (each scattered over the kernel)."""
        return self.in_hw if self.kind == "conv_transpose" else self.out_hw

    @property
    def weight_count(self):
        return int(np.prod(self.weight_shape))

    @property
    def input_count(self):
        """Input activations of one copy, all images: N x C x H x W (x operands)."""
        per_operand = self.batch * self.in_channels * self.in_hw[0] * self.in_hw[1]
        return per_operand * (self.operands if self.kind in ("eltwise", "pool") else 1)

    @property
    def output_count(self):
        return self.batch * self.out_channels * self.out_hw[0] * self.out_hw[1]

    def to_dict(self):
        return {"kind": self.kind, "batch": self.batch, "in_channels": self.in_channels,
                "in_hw": list(self.in_hw), "out_channels": self.out_channels,
                "out_hw": list(self.out_hw), "kernel_hw": list(self.kernel_hw),
                "groups": self.groups, "bias": self.bias, "operands": self.operands,
                "ops_per_output": self.ops_per_output, "repeat": self.repeat}


class WeightStats(object):
    """What the model needs to know of a weight tensor (M, C/g, R, S): its zeros, by structure.

    ``nonzero``: non-zero weights; ``nonzero_rows``: filter rows (m, c, r) with a non-zero weight
    (a row-stationary PE skips all-zero rows); ``row_deliveries``: sum over (group, c, r) of
    ceil(filters with a non-zero row / filters_per_pass) -- input rows the array delivers;
    ``active_filter_passes``: sum over groups of ceil(filters with any non-zero / filters_per_pass).
    """

    def __init__(self, shape, groups, filters_per_pass, weights=None):
        m, cg, r, s = (int(d) for d in shape)
        g = int(groups)
        if weights is None:  # dense: every weight non-zero
            self.count = m * cg * r * s
            self.nonzero = self.count
            self.nonzero_rows = m * cg * r
            self.row_deliveries = g * cg * r * _ceil_div(m // g, filters_per_pass)
            self.active_filter_passes = g * _ceil_div(m // g, filters_per_pass)
            return
        nz = np.asarray(weights).reshape(m, cg, r, s) != 0
        rows = nz.any(axis=3)  # (M, Cg, R)
        per_group_rows = rows.reshape(g, m // g, cg, r).sum(axis=1)  # filters using each (g, c, r)
        active = nz.reshape(g, m // g, -1).any(axis=2).sum(axis=1)  # live filters per group
        self.count = m * cg * r * s
        self.nonzero = int(nz.sum())
        self.nonzero_rows = int(rows.sum())
        self.row_deliveries = int(np.sum(-(-per_group_rows // filters_per_pass)))
        self.active_filter_passes = int(np.sum(-(-active // filters_per_pass)))


class LayerEnergy(object):
    """One row of the estimate: counts, accesses per level and data type, energy per level.

    ``accesses[level][data]`` with data in inputs / weights / psums (outputs at DRAM);
    ``energy`` per level plus ``mac`` and ``total``, in normalized units (a 16-bit MAC = 1).
    """

    def __init__(self, name, op_type, shape, macs, dense_macs, weights, nonzero_weights,
                 weight_words, weight_format, accesses, energy, note=None, input_zero_fraction=0.0,
                 output_zero_fraction=0.0):
        self.name = name
        self.input_zero_fraction = float(input_zero_fraction)
        self.output_zero_fraction = float(output_zero_fraction)
        self.op_type = op_type
        self.shape = shape
        self.macs = macs
        self.dense_macs = dense_macs
        self.weights = weights
        self.nonzero_weights = nonzero_weights
        self.weight_words = weight_words
        self.weight_format = weight_format
        self.accesses = accesses
        self.energy = energy
        self.note = note

    @property
    def kind(self):
        return self.shape.kind

    @property
    def total(self):
        return self.energy["total"]

    @property
    def sparsity(self):
        return 1.0 - self.nonzero_weights / float(self.weights) if self.weights else 0.0

    def level_accesses(self, level):
        return sum(self.accesses[level].values())

    def renamed(self, name, op_type=None, note=None):
        """The same figures under another name (the ONNX node's)."""
        return LayerEnergy(name, op_type or self.op_type, self.shape, self.macs, self.dense_macs,
                           self.weights, self.nonzero_weights, self.weight_words, self.weight_format,
                           self.accesses, self.energy, note if note is not None else self.note,
                           self.input_zero_fraction, self.output_zero_fraction)

    def to_dict(self, mj_per_unit=None):
        data = {"name": self.name, "op_type": self.op_type, "kind": self.kind,
                "shape": self.shape.to_dict(), "macs": self.macs, "dense_macs": self.dense_macs,
                "weights": self.weights, "nonzero_weights": self.nonzero_weights,
                "sparsity": self.sparsity, "weight_words_stored": self.weight_words,
                "weight_format": self.weight_format,
                "input_activations": self.shape.input_count * self.shape.repeat,
                "output_activations": self.shape.output_count * self.shape.repeat,
                "input_zero_fraction": self.input_zero_fraction,
                "output_zero_fraction": self.output_zero_fraction,
                "accesses": {level: dict(self.accesses[level]) for level in LEVELS},
                "energy_units": dict(self.energy)}
        if mj_per_unit is not None:
            data["energy_mj"] = {k: v * mj_per_unit for k, v in self.energy.items()}
        if self.note:
            data["note"] = self.note
        return data


def layer_energy(shape, config, weights=None, name="", op_type="", input_zero_fraction=0.0,
                 output_zero_fraction=0.0):
    """The energy of one layer of ``shape`` under ``config``.

    ``weights``: the layer's weight array, shape ``shape.weight_shape`` ((M, C/groups, R, S); a
    conv_transpose's (C, M/groups, R, S)) or anything that reshapes to it (its zeros are
    skipped), or ``None`` for dense weights. ``input_zero_fraction`` / ``output_zero_fraction``:
    the share of zeros in the layer's input and in the output it stores (measured on data;
    conv/fc/matmul layers skip the MACs of zero inputs and keep zeros compressed in DRAM, see
    :mod:`energy_model`). Returns a :class:`LayerEnergy`.
    """
    for label, value in (("input", input_zero_fraction), ("output", output_zero_fraction)):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError("layer {}: the {} zero fraction must be in [0, 1], got {!r}".format(
                name or op_type, label, value))
    if shape.kind in COMPUTE_KINDS:
        row = _compute_layer(shape, config, weights, name, op_type, float(input_zero_fraction),
                             float(output_zero_fraction))
    elif shape.kind in ("eltwise", "pool"):
        row = _elementwise_layer(shape, config, name, op_type)
    else:
        row = _free_layer(shape, name, op_type)
    if shape.repeat != 1:
        row = _repeat(row, shape.repeat)
    return row


def _compute_layer(shape, config, weights, name, op_type, zeros=0.0, out_zeros=0.0):
    n = shape.batch
    m = shape.out_channels
    c = shape.in_channels
    g = shape.groups
    cg = c // g
    h, w = shape.in_hw
    e, f = shape.positions_hw  # a transposed conv: input pixels, each scattered over the kernel
    q = config.filters_per_pass
    if weights is not None and int(np.asarray(weights).size) != shape.weight_count:
        raise InputError("layer {}: weights have {} values, the shape needs {} {}".format(
            name or op_type, int(np.asarray(weights).size), shape.weight_count, shape.weight_shape))
    if shape.kind == "conv_transpose" and weights is not None:
        weights = _filters_first(weights, shape)
    stats = WeightStats((m, cg) + shape.kernel_hw, g, q, weights)
    weight_macs = n * e * f * stats.nonzero  # MACs with a non-zero weight
    dense_macs = n * e * f * stats.count
    # activation sparsity: a MAC whose input is zero is skipped (zeros spread evenly)
    density = 1.0 - zeros
    macs = weight_macs if not zeros else weight_macs * density
    bias_words = m if shape.bias else 0
    weight_words, weight_format = _stored_weight_words(stats, config)
    weight_words += bias_words
    outputs = shape.output_count
    psum_passes = _ceil_div(cg, config.channels_per_pass)
    accesses = {
        # one read of each weight from DRAM, each input read once, each output written once
        "dram": {"inputs": _stored_activation_words(n * c * h * w, density, config),
                 "weights": weight_words,
                 "psums": _stored_activation_words(outputs, 1.0 - out_zeros, config)},
        # inputs: once per pass of filters_per_pass live filters; weights: once per image;
        # psums: spill between input-channel passes (write + read back), final write
        "buffer": {"inputs": n * cg * h * w * stats.active_filter_passes,
                   "weights": n * weight_words,
                   "psums": outputs * (2 * psum_passes - 1)},
        # row stationary: a filter row enters a PE once per output row; an input row of width W
        # is delivered once per output row and (g, c, r), multicast to a pass of filters; each PE
        # hands its output row of F partial sums on for accumulation
        "array": {"inputs": n * e * w * stats.row_deliveries,
                  "weights": n * e * stats.nonzero,
                  "psums": n * e * f * stats.nonzero_rows},
        # per MAC: read weight, read input, read + write partial sum; a zero input is still
        # read (to detect it), the rest of its MAC is skipped
        "rf": {"inputs": weight_macs, "weights": macs, "psums": 2 * macs},
    }
    mac_ops = macs + (outputs if shape.bias else 0)  # bias adds count as MAC-equivalent ops
    return LayerEnergy(name, op_type, shape, macs, dense_macs, stats.count, stats.nonzero,
                       weight_words, weight_format, accesses, _energy(accesses, mac_ops, config),
                       input_zero_fraction=zeros, output_zero_fraction=out_zeros)


def _elementwise_layer(shape, config, name, op_type):
    outputs = shape.output_count
    ops = outputs * shape.ops_per_output
    # fused: runs on the producer's output while it is in the global buffer (no DRAM traffic)
    accesses = {"dram": {"inputs": 0, "weights": 0, "psums": 0},
                "buffer": {"inputs": shape.input_count, "weights": 0, "psums": outputs},
                "array": {"inputs": 0, "weights": 0, "psums": 0},
                "rf": {"inputs": ops, "weights": 0, "psums": ops}}
    return LayerEnergy(name, op_type, shape, ops, ops, 0, 0, 0, "none", accesses,
                       _energy(accesses, ops, config))


def _free_layer(shape, name, op_type):
    accesses = {level: {"inputs": 0, "weights": 0, "psums": 0} for level in LEVELS}
    energy = {level: 0.0 for level in LEVELS}
    energy.update({"mac": 0.0, "total": 0.0})
    return LayerEnergy(name, op_type, shape, 0, 0, 0, 0, 0, "none", accesses, energy)


def _filters_first(weights, shape):
    """A transposed conv's (C, M/g, R, S) weights as (M, C/g, R, S): filter m holds the weights
    that scatter every input channel of its group onto output channel m."""
    g = shape.groups
    c, mg, r, s = shape.weight_shape
    grouped = np.asarray(weights).reshape(g, c // g, mg, r, s)
    return grouped.transpose(0, 2, 1, 3, 4).reshape(g * mg, c // g, r, s)


def _stored_weight_words(stats, config):
    """Weight words kept in DRAM/buffer: dense, or non-zeros with an index each (sparse)."""
    dense = float(stats.count)
    sparse = stats.nonzero * (1.0 + config.index_bits / float(config.bits))
    if config.weight_format == "dense" or (config.weight_format == "auto" and dense <= sparse):
        return dense, "dense"
    return sparse, "sparse"


def _stored_activation_words(count, density, config):
    """Activation words moved to or from DRAM: dense, or (with zeros) the non-zeros with an index
    each when that is smaller (run-length style compression of sparse activations)."""
    if density >= 1.0:
        return count
    return min(float(count), count * density * (1.0 + config.index_bits / float(config.bits)))


def _energy(accesses, mac_ops, config):
    costs = config.costs
    energy = {level: float(sum(accesses[level].values())) * costs.level(level) * config.data_scale
              for level in LEVELS}
    energy["mac"] = float(mac_ops) * costs.mac * config.mac_scale
    energy["total"] = sum(energy[level] for level in LEVELS) + energy["mac"]
    return energy


def _repeat(row, times):
    accesses = {level: {k: v * times for k, v in row.accesses[level].items()} for level in LEVELS}
    energy = {k: v * times for k, v in row.energy.items()}
    return LayerEnergy(row.name, row.op_type, row.shape, row.macs * times, row.dense_macs * times,
                       row.weights * times, row.nonzero_weights * times, row.weight_words * times,
                       row.weight_format, accesses, energy, row.note, row.input_zero_fraction,
                       row.output_zero_fraction)


def _ceil_div(a, b):
    return -(-int(a) // int(b))


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
