"""Rails from jetson-stats (``jtop``) when its service is running (optional; ``jetson-stats<7`` on
Python 3.6). jtop reads the same INA3221 sensors; use it where the sysfs files are not readable.

Both shapes of ``jtop.power`` are understood (read from jetson-stats' own code):

- jetson-stats 4.x to 7.x (``jtop/core/power.py``): ``{"rail": {name: {"volt", "curr", "power",
  "avg", "online", ...}}, "tot": {...}}`` (mV, mA, mW). Its ``total_power`` takes the board's
  input rail (``VIN``, ``POM_5V_IN`` or ``VDD_IN``) OUT of ``rail``, puts it under ``tot`` and adds
  ``tot["name"]``; without such a rail, ``tot`` is the sum of all rails and has no ``name``.
- jetson-stats < 4 (3.x, ``service.py``): ``(total, rails)``, each ``{"cur", "avg"}`` in mW, rails
  renamed (``VDD_``/``POM_`` dropped, ``_`` -> space: ``POM_5V_GPU`` -> ``5V GPU``); the first
  rail whose name contains ``IN`` was taken out of ``rails`` as ``total``, else ``total`` is the sum.

So the input rail is put back among the rails under its name, and a ``tot`` that is only the sum
of the rails is dropped (the board's total policy decides what to add, as for every source).
"""
import collections

from basics.errors import InputError, MissingDependencyError
from basics.lazy import lazy_import
from toolkit.power.boards import detect_board, total_policy
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.sources.base import Source, SourceUnavailable


def _row(values):
    row = {"power_mw": float(values["power"])}
    if "volt" in values and "curr" in values:
        row["voltage_mv"] = float(values["volt"])
        row["current_ma"] = float(values["curr"])
    return row


def _jtop3_name(name, board):
    """The sysfs/tegrastats name of a jetson-stats 3.x rail name (``5V GPU`` -> ``POM_5V_GPU``),
    found among ``board``'s rails; the 3.x name itself when the board does not have it."""
    for rail in (board.rails if board is not None else ()):
        if rail.replace("VDD_", "").replace("POM_", "").replace("_", " ") == name:
            return rail
    return name


def parse_jtop_power(power, board=None):
    """``{rail: {"power_mw": .., "voltage_mv": .. (4+ only), "current_ma": ..}}`` from jtop's
    ``power`` (either shape, see the module docstring), the input rail included."""
    rails = collections.OrderedDict()
    if isinstance(power, dict) and isinstance(power.get("rail"), dict):
        total = power.get("tot")
        if isinstance(total, dict) and total.get("name") and "power" in total:
            rails[str(total["name"])] = _row(total)  # the input rail, taken out by jtop
        for name, values in power["rail"].items():
            if isinstance(values, dict) and "power" in values:
                rails[name] = _row(values)
        return rails
    if isinstance(power, (tuple, list)) and len(power) == 2 and isinstance(power[1], dict):
        total, parts = power
        for name, values in parts.items():
            if isinstance(values, dict) and "cur" in values:
                rails[_jtop3_name(name, board)] = {"power_mw": float(values["cur"])}
        if isinstance(total, dict) and "cur" in total:
            summed = sum(row["power_mw"] for row in rails.values())
            expected = board.total if board is not None else None
            if expected and expected not in rails:
                rails[expected] = {"power_mw": float(total["cur"])}
                rails.move_to_end(expected, last=False)
            elif expected is None and board is None and rails and abs(
                    float(total["cur"]) - summed) > len(rails):
                rails["IN"] = {"power_mw": float(total["cur"])}  # 3.x dropped the real name
                rails.move_to_end("IN", last=False)
        return rails
    raise InputError("unexpected jtop power data: {!r}".format(power)[:160])


def _jtop():
    try:
        return lazy_import("jtop", "reading power through jetson-stats")
    except MissingDependencyError as exc:
        raise SourceUnavailable(str(exc)) from None


class JtopSource(Source):
    """jtop's rail readings, sampled at our rate (jtop refreshes at its own interval)."""

    kind = "jtop"

    def __init__(self, rails, with_vi, board, interval_s, averaging_s=0.0, averaging_note=""):
        columns = []
        for rail in rails:
            columns.append((rail, "power_mw"))
            if with_vi:
                columns += [(rail, "voltage_mv"), (rail, "current_ma")]
        Source.__init__(self, columns, total_policy(board, rails),
                        "jetson-stats (jtop service, refresh {:g} s)".format(interval_s),
                        board=board)
        self.interval_s = interval_s
        self.min_period_s = interval_s
        self.averaging_s = averaging_s
        self.averaging_note = averaging_note
        # the INA3221 keeps each cycle's mean until the next: readings lag by about a period
        self.sensor = BlockAveragingSensor(averaging_s) if averaging_s > 0 else None
        self._jetson = None

    def open(self):
        module = _jtop()
        try:
            self._jetson = module.jtop(interval=self.interval_s)
            self._jetson.start()
        except Exception as exc:  # jtop.JtopException when the service is not running
            self._jetson = None
            raise InputError("jtop service not reachable: {} (sudo systemctl start jtop)".format(
                exc)) from None

    def read(self):
        rails = parse_jtop_power(self._jetson.power, self.board)
        try:
            return tuple(rails[rail][quantity] for rail, quantity in self.columns)
        except KeyError as exc:
            raise InputError("jtop no longer reports {}".format(exc)) from None

    def close(self):
        jetson, self._jetson = self._jetson, None
        if jetson is not None:
            try:
                jetson.close()
            except Exception:  # noqa: BLE001
                pass


def discover(config):
    module = _jtop()
    interval_s = max(0.1, 1.0 / config.rate_hz)
    try:
        jetson = module.jtop(interval=interval_s)
        jetson.start()
    except Exception as exc:  # noqa: BLE001 - JtopException: service not running
        raise SourceUnavailable("jtop service not reachable: {}".format(exc)) from None
    board = detect_board(config.sysfs_root)
    try:
        rails = parse_jtop_power(jetson.power, board)
    finally:
        try:
            jetson.close()
        except Exception:  # noqa: BLE001
            pass
    if not rails:
        raise SourceUnavailable("jtop reports no power rails")
    with_vi = all("voltage_mv" in row for row in rails.values())
    averaging_s, note = 0.0, "unknown"
    try:
        from toolkit.power.sources.ina3221 import discover_rails
        _, _, averaging_s, note = discover_rails(config.sysfs_root)
    except InputError:
        pass
    return JtopSource(list(rails), with_vi, board, interval_s,
                      averaging_s, note)
