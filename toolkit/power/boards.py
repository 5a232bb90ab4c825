"""Which Jetson this is, and which of its power rails is the total (never add parts to the total).

The board is read from ``<root>/proc/device-tree/model`` (NUL-terminated), with
``<root>/proc/device-tree/compatible`` as a fallback. Each board of :data:`BOARDS` names its
INA3221 rails: the total rail (module input) and its parts, or, where the module has no total
rail, the rails whose sum is the total. Sources: NVIDIA's Jetson Linux developer guides
(power management chapters) and the L4T device trees.
"""
import os
import re


class Board(object):
    """One Jetson family: how to recognise it (regular expressions on the lower-case model string,
    then on the compatible list: module part numbers) and how its rails add up.

    ``total``: the rail that measures the whole module (``None``: there is none);
    ``parts``: rails inside ``total`` (or inside a summed rail), never added to it;
    ``summed``: where ``total`` is ``None``, the rails whose sum is the module's power.
    """

    def __init__(self, key, name, models, compatibles, total=None, parts=(), summed=(), note=""):
        self.key = key
        self.name = name
        self.models = tuple(models)
        self.compatibles = tuple(compatibles)
        self.total = total
        self.parts = tuple(parts)
        self.summed = tuple(summed)
        self.note = note

    @property
    def rails(self):
        """Every rail of the board's table entry (total or summed rails first, then parts)."""
        return ((self.total,) if self.total else self.summed) + self.parts

    def __repr__(self):
        return "Board({!r})".format(self.key)


# Order matters: the first whose model pattern matches wins ("orin nano" before "nano").
BOARDS = (
    Board("agx-orin", "Jetson AGX Orin", [r"agx orin"], [r"p3701-"],
          total=None, summed=("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
          parts=("VDDQ_VDD2_1V8AO",),
          note="AGX Orin has no total rail: VIN_SYS_5V0 is the 5 V system input only "
               "(and feeds VDDQ_VDD2_1V8AO)"),
    Board("orin-nano", "Jetson Orin Nano", [r"orin nano"], [r"p3767-000[345]"],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC")),
    Board("orin-nx", "Jetson Orin NX", [r"orin nx"], [r"p3767-000[01]"],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC")),
    Board("xavier-nx", "Jetson Xavier NX", [r"xavier nx"], [r"p3668-"],
          total="VDD_IN", parts=("VDD_CPU_GPU_CV", "VDD_SOC")),
    Board("agx-xavier", "Jetson AGX Xavier", [r"agx xavier", r"jetson-agx", r"agx$"],
          [r"p2888-", r"p2972-", r"nvidia,galen"],
          total=None, summed=("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
          note="AGX Xavier has no total rail: the six monitored supplies are summed"),
    Board("nano", "Jetson Nano", [r"jetson nano", r"jetson-nano"],
          [r"p3448-", r"p3450-", r"nvidia,jetson-nano"],
          total="POM_5V_IN", parts=("POM_5V_GPU", "POM_5V_CPU")),
)

# rails that are the module total on boards not in the table (TX1/TX2 family: VDD_IN)
GENERIC_TOTALS = ("VDD_IN", "POM_5V_IN")


def _read_dt_string(path):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError):
        return None
    # device-tree strings are NUL-terminated; "compatible" is a NUL-separated list
    return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def read_model(root="/"):
    """The device-tree model string under ``root`` (e.g. 'NVIDIA Jetson Nano Developer Kit'),
    or None off a Jetson."""
    return _read_dt_string(os.path.join(root, "proc", "device-tree", "model"))


def detect_board(root="/"):
    """The :class:`Board` of the machine under ``root`` (by its model string, else its compatible
    list), or None when unknown."""
    model = (read_model(root) or "").lower()
    compatible = (_read_dt_string(os.path.join(root, "proc", "device-tree", "compatible"))
                  or "").lower()
    for text, attribute in ((model, "models"), (compatible, "compatibles")):
        if text:
            for board in BOARDS:
                if any(re.search(pattern, text) for pattern in getattr(board, attribute)):
                    return board
    return None


class TotalPolicy(object):
    """How rails add up to the total: ``total`` rail name, or ``summed`` rail names; ``parts``
    are reported but never added; ``note`` explains a sum or a guess."""

    def __init__(self, total=None, summed=(), parts=(), note=""):
        self.total = total
        self.summed = tuple(summed)
        self.parts = tuple(parts)
        self.note = note

    @property
    def total_rails(self):
        """Rails whose energies add up to the total."""
        return (self.total,) if self.total else self.summed

    @property
    def is_summed(self):
        return self.total is None and len(self.summed) > 1

    @property
    def label(self):
        if self.total:
            return self.total
        return "sum of " + " + ".join(self.summed)

    def to_dict(self):
        return {"total": self.total, "summed": list(self.summed), "parts": list(self.parts),
                "label": self.label, "note": self.note}

    @classmethod
    def from_dict(cls, data):
        return cls(data.get("total"), data.get("summed") or (), data.get("parts") or (),
                   data.get("note") or "")


def total_policy(board, rails):
    """Decide the total for the rail names ``rails`` found on ``board`` (a Board or None)."""
    rails = list(rails)
    present = set(rails)
    if board is not None:
        if board.total and board.total in present:
            return TotalPolicy(board.total, parts=[r for r in rails if r != board.total])
        if not board.total:
            summed = [r for r in board.summed if r in present]
            if summed:
                note = board.note
                missing = [r for r in board.summed if r not in present]
                if missing:
                    note += "; rails {} not found, so the sum is incomplete".format(missing)
                return TotalPolicy(None, summed, [r for r in rails if r not in summed], note)
        prefix = "{}: expected rails {} not found; ".format(
            board.name, list((board.total,) if board.total else board.summed))
    else:
        prefix = ""
    for name in GENERIC_TOTALS:
        if name in present:
            return TotalPolicy(name, parts=[r for r in rails if r != name],
                               note=prefix + "{} taken as the total".format(name))
    if len(rails) == 1:
        return TotalPolicy(rails[0], note=prefix.rstrip("; "))
    return TotalPolicy(None, rails, (), prefix + "unknown board without a known total rail: "
                       "all rails are summed (check that none is part of another)")
