"""The one table of Jetson boards: SoC, module, JetPack releases (with their TensorRT, CUDA and
Python), INA3221 power monitors and how their rails add up to the module's power, with the
source of each fact. The device tree is read here, once (:func:`read_device_tree`).

Used by ``engines.platform_info`` (``toolkit info``) and ``toolkit.power`` (rails, totals), and
by the tests, whose fake sysfs trees are built from :data:`BOARDS`.
"""
import os
import re

# -- SoCs (the last entry of /proc/device-tree/compatible) -------------------------------------
# source: NVIDIA CUDA GPUs compute capability table; Jetson module data sheets (DLA)
SOCS = {
    "tegra210": {"family": "Jetson Nano / TX1", "gpu_arch": "Maxwell", "compute_capability": "5.3",
                 "fast_fp16": True, "fast_int8": False, "dla": False},
    "tegra186": {"family": "Jetson TX2", "gpu_arch": "Pascal", "compute_capability": "6.2",
                 "fast_fp16": True, "fast_int8": False, "dla": False},
    "tegra194": {"family": "Jetson AGX Xavier / Xavier NX", "gpu_arch": "Volta",
                 "compute_capability": "7.2", "fast_fp16": True, "fast_int8": True, "dla": True},
    "tegra234": {"family": "Jetson AGX Orin / Orin NX / Orin Nano", "gpu_arch": "Ampere",
                 "compute_capability": "8.7", "fast_fp16": True, "fast_int8": True, "dla": True},
}

# -- JetPack releases ----------------------------------------------------------------------------
# L4T release -> (JetPack, TensorRT, CUDA, Python). Source: NVIDIA's JetPack release notes and
# the JetPack archive (components of each release).
RELEASES = (
    ("32.6.1", "4.6", "8.0.1", "10.2", "3.6"),
    ("32.7.1", "4.6.1", "8.2.1", "10.2", "3.6"),
    ("32.7.2", "4.6.2", "8.2.1", "10.2", "3.6"),
    ("32.7.3", "4.6.3", "8.2.1", "10.2", "3.6"),
    ("32.7.4", "4.6.4", "8.2.1", "10.2", "3.6"),
    ("32.7.5", "4.6.5", "8.2.1", "10.2", "3.6"),
    ("32.7.6", "4.6.6", "8.2.1", "10.2", "3.6"),
    ("35.1.0", "5.0.2", "8.4.1", "11.4", "3.8"),
    ("35.2.1", "5.1", "8.5.2", "11.4", "3.8"),
    ("35.3.1", "5.1.1", "8.5.2", "11.4", "3.8"),
    ("35.4.1", "5.1.2", "8.5.2", "11.4", "3.8"),
    ("35.5.0", "5.1.3", "8.5.2", "11.4", "3.8"),
    ("35.6.0", "5.1.4", "8.5.2", "11.4", "3.8"),
    ("35.6.1", "5.1.5", "8.5.2", "11.4", "3.8"),
    ("36.3.0", "6.0", "8.6.2", "12.2", "3.10"),
    ("36.4.0", "6.1", "10.3", "12.6", "3.10"),
    ("36.4.3", "6.2", "10.3", "12.6", "3.10"),
    ("36.4.4", "6.2.1", "10.3", "12.6", "3.10"),
)
JETPACK_OF_L4T = dict((row[0], row[1]) for row in RELEASES)
TENSORRT_OF_L4T = dict((row[0], row[2]) for row in RELEASES)

# -- INA3221 drivers -----------------------------------------------------------------------------
# JetPack 4: NVIDIA's ``ina3221x`` iio driver (the i2c device's ``name`` file says ina3221x);
# JetPack 5/6: the Linux ``ina3221`` hwmon driver (``name``: ina3221). Source: the L4T kernels;
# Documentation/hwmon/ina3221.rst (in1..3 bus mV, curr1..3 mA, in4..6 shunt uV, in7 the sum of
# the shunt voltages, curr4 the sum of the currents, update_interval ms).
DRIVER_NAMES = {"iio": "ina3221x", "hwmon": "ina3221"}
NOT_CONNECTED = "NC"


def driver_of_jetpack(jetpack):
    """``iio`` for JetPack 4.x, ``hwmon`` from JetPack 5 on."""
    return "iio" if str(jetpack).startswith("4.") else "hwmon"


class Board(object):
    """One Jetson module (and its developer kit's carrier).

    ``models``/``compatibles``: regular expressions on the lower-case device-tree model string and
    compatible list (module part numbers); ``soc``; ``jetpacks``: the JetPack lines it runs;
    ``monitors``: its INA3221 chips as ``(i2c bus-address, (channel labels...))``, ``NC`` for an
    unconnected channel; ``total``: the rail that measures the whole module, or None; ``summed``:
    where there is no such rail, the rails whose sum is the module's power; ``parts``: rails
    inside another (reported, never added); ``sources``: where each fact comes from.
    """

    def __init__(self, key, name, soc, modules, models, compatibles, jetpacks, monitors,
                 total=None, summed=(), parts=(), note="", sources=None):
        self.key = key
        self.name = name
        self.soc = soc
        self.modules = tuple(modules)
        self.models = tuple(models)
        self.compatibles = tuple(compatibles)
        self.jetpacks = tuple(jetpacks)
        self.monitors = tuple((address, tuple(labels)) for address, labels in monitors)
        self.total = total
        self.summed = tuple(summed)
        self.parts = tuple(parts)
        self.note = note
        self.sources = dict(sources or {})

    @property
    def rails(self):
        """Every connected rail of the monitors, in chip and channel order."""
        return tuple(label for _, labels in self.monitors for label in labels
                     if label != NOT_CONNECTED)

    @property
    def soc_facts(self):
        return SOCS[self.soc]

    def __repr__(self):
        return "Board({!r})".format(self.key)


_DG = "NVIDIA Jetson Linux Developer Guide, Platform Power and Performance"

# Order matters: the first whose model pattern matches wins ("orin nano" before "nano").
BOARDS = (
    Board("agx-orin", "Jetson AGX Orin", "tegra234", ["p3701-0000", "p3701-0004", "p3701-0005"],
          [r"agx orin"], [r"p3701-"], ["5", "6"],
          [("1-0040", ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")),
           ("1-0041", ("NC", "VDDQ_VDD2_1V8AO", "NC"))],
          total=None, summed=("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
          parts=("VDDQ_VDD2_1V8AO",),
          note="AGX Orin has no total rail: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0 are summed; "
               "VDDQ_VDD2_1V8AO is fed by VIN_SYS_5V0, so it is not added again",
          sources={
              "monitors": "Linux arch/arm64/boot/dts/nvidia/tegra234-p3701.dtsi (NVIDIA, 2023): "
                          "INA3221 0x40 VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0; 0x41 channel 2 "
                          "VDDQ_VDD2_1V8AO, channels 1 and 3 unconnected",
              "total": _DG + " (r35/r36, Jetson Orin, software-based power consumption "
                       "modeling): VIN_SYS_5V0 'supplies to various IOs e.g. HDMI, USB, UPHY, "
                       "UFS, SDMMC, EMMC, DDR etc. VDDQ_VDD2_1V8AO power is also included in "
                       "VIN_SYS_5V0 power'. jetson-stats 7.2 (jtop/core/power.py total_power) "
                       "sums all rails where no VIN/VDD_IN/POM_5V_IN rail exists, a generic rule "
                       "that counts the DDR rail twice (11755 mW for a true 11299 mW)"}),
    Board("orin-nano", "Jetson Orin Nano", "tegra234", ["p3767-0003", "p3767-0004", "p3767-0005"],
          [r"orin nano"], [r"p3767-000[345]"], ["5", "6"],
          [("1-0040", ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"))],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC"),
          sources={"monitors": "Linux tegra234-p3767.dtsi (NVIDIA, 2023): INA3221 0x40",
                   "total": _DG + ": VDD_IN is the module's input power; NVIDIA forum "
                            "'Orin NX power data from jtop' (cited by jetson-stats)"}),
    Board("orin-nx", "Jetson Orin NX", "tegra234", ["p3767-0000", "p3767-0001"],
          [r"orin nx"], [r"p3767-000[01]"], ["5", "6"],
          [("1-0040", ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"))],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC"),
          sources={"monitors": "Linux tegra234-p3767.dtsi (NVIDIA, 2023): INA3221 0x40",
                   "total": _DG + ": VDD_IN is the module's input power"}),
    Board("xavier-nx", "Jetson Xavier NX", "tegra194", ["p3668-0000", "p3668-0001"],
          [r"xavier nx"], [r"p3668-"], ["4", "5"],
          [("7-0040", ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"))],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC"),
          sources={"monitors": _DG + " (Jetson Xavier NX: INA3221 at 7-0040)",
                   "total": "NVIDIA forum 'Interpretation of Jetson NX power rail': VDD_IN is "
                            "the total power of the module; DDR and interfaces are inside it"}),
    Board("agx-xavier", "Jetson AGX Xavier", "tegra194", ["p2888-0001", "p2888-0004"],
          [r"agx xavier", r"jetson-agx", r"agx$"], [r"p2888-", r"p2972-", r"nvidia,galen"],
          ["4", "5"],
          [("1-0040", ("GPU", "CPU", "SOC")), ("1-0041", ("CV", "VDDRQ", "SYS5V"))],
          total=None, summed=("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
          note="AGX Xavier has no total rail: the six monitored supplies are summed",
          sources={"monitors": "Jetson AGX Xavier Series Product Design Guide DG-09840-001, "
                               "5.6.2 Power Monitor: 0x40 GPU/CPU/SOC, 0x41 CV/VDDRQ/SYS5V",
                   "total": "same guide: the six sense resistors sit on separate supply inputs "
                            "(SYS_VIN_HV, SYS_VIN_MV), so their sum is the module's power; "
                            "NVIDIA forum 'Xavier total power consumption' (cited by "
                            "jetson-stats)"}),
    Board("nano", "Jetson Nano", "tegra210", ["p3448-0000", "p3448-0002", "p3448-0003"],
          [r"jetson nano", r"jetson-nano"], [r"p3448-", r"p3450-", r"nvidia,jetson-nano"],
          ["4"],
          [("6-0040", ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"))],
          total="POM_5V_IN", parts=("POM_5V_GPU", "POM_5V_CPU"),
          sources={"monitors": _DG + " 32.x (Jetson Nano: INA3221 at 6-0040)",
                   "total": "NVIDIA forum 'Power consumption monitoring' (73608/8): POM_5V_IN "
                            "is the total, the GPU and CPU rails are parts of it (cited by "
                            "jetson-stats issue 51)"}),
)

# rails that are the module's total on boards not in the table (TX1/TX2: VDD_IN)
GENERIC_TOTALS = ("VDD_IN", "POM_5V_IN")


class DeviceTree(object):
    """``/proc/device-tree`` under a root, read once: ``model`` (NUL stripped, or None) and
    ``compatible`` (list)."""

    def __init__(self, model, compatible):
        self.model = model
        self.compatible = list(compatible)

    @property
    def soc(self):
        for entry in self.compatible:
            name = entry.split(",")[-1]
            if name in SOCS:
                return name
        return None


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_device_tree(root="/"):
    """The :class:`DeviceTree` under ``root`` (``model`` is NUL-terminated, ``compatible`` a
    NUL-separated list such as ``nvidia,p3450-0000\\0nvidia,jetson-nano\\0nvidia,tegra210\\0``)."""
    folder = os.path.join(root, "proc", "device-tree")
    model = _read_bytes(os.path.join(folder, "model"))
    compatible = _read_bytes(os.path.join(folder, "compatible")) or b""
    model = model.replace(b"\0", b"").decode("utf-8", "replace").strip() if model else None
    return DeviceTree(model or None, [part.decode("utf-8", "replace").strip()
                                      for part in compatible.split(b"\0") if part.strip()])


def read_model(root="/"):
    """The device-tree model string under ``root``, or None off a Jetson."""
    return read_device_tree(root).model


def board_of(tree):
    """The :class:`Board` of a :class:`DeviceTree` (model string first, then the compatible
    list), or None when unknown."""
    model = (tree.model or "").lower()
    compatible = " ".join(tree.compatible).lower()
    for text, attribute in ((model, "models"), (compatible, "compatibles")):
        if text:
            for board in BOARDS:
                if any(re.search(pattern, text) for pattern in getattr(board, attribute)):
                    return board
    return None


def detect_board(root="/"):
    """The :class:`Board` of the machine under ``root``, or None."""
    return board_of(read_device_tree(root))


def board_by_key(key):
    for board in BOARDS:
        if board.key == key:
            return board
    raise KeyError(key)
