"""Which of a board's power rails is the total (never add parts to the total).

The boards (rails, total policy and the source of each fact) are in the one table of
:mod:`engines.boards`, which also reads the device tree; this module decides the total for the
rails a source actually found.
"""
from engines.boards import BOARDS, GENERIC_TOTALS, Board, detect_board, read_model

__all__ = ["BOARDS", "Board", "GENERIC_TOTALS", "TotalPolicy", "detect_board", "read_model",
           "total_policy"]


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
