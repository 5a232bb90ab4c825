"""Rails from jetson-stats (``jtop``) when its service is running (optional; ``jetson-stats<7`` on
Python 3.6). jtop reads the same INA3221 sensors; use it where the sysfs files are not readable.

Both shapes of ``jtop.power`` are understood: jetson-stats 4+ ``{"rail": {name: {"volt", "curr",
"power", ...}}, "tot": {...}}`` (mV, mA, mW) and older ``(total, {name: {"cur", "avg"}})`` (mW).
"""
import collections

from basics.errors import InputError, MissingDependencyError
from basics.lazy import lazy_import
from toolkit.power.boards import detect_board, total_policy
from toolkit.power.sources.base import Source, SourceUnavailable


def parse_jtop_power(power):
    """``{rail: {"power_mw": .., "voltage_mv": .. (4+ only), "current_ma": ..}}`` from jtop."""
    rails = collections.OrderedDict()
    if isinstance(power, dict) and isinstance(power.get("rail"), dict):
        for name, values in power["rail"].items():
            if not isinstance(values, dict) or "power" not in values:
                continue
            row = {"power_mw": float(values["power"])}
            if "volt" in values and "curr" in values:
                row["voltage_mv"] = float(values["volt"])
                row["current_ma"] = float(values["curr"])
            rails[name] = row
        return rails
    if isinstance(power, (tuple, list)) and len(power) == 2 and isinstance(power[1], dict):
        for name, values in power[1].items():
            if isinstance(values, dict) and "cur" in values:
                rails[name] = {"power_mw": float(values["cur"])}
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
        rails = parse_jtop_power(self._jetson.power)
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
    try:
        rails = parse_jtop_power(jetson.power)
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
    return JtopSource(list(rails), with_vi, detect_board(config.sysfs_root), interval_s,
                      averaging_s, note)
