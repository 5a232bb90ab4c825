"""What every power source offers the sampler, and the one-line errors they raise.

A source is a plain picklable description until :meth:`Source.open` (run inside the sampler
process) opens its files or subprocess. Each :meth:`Source.read` returns one tuple of floats in
the order of :attr:`Source.columns`, a list of ``(rail, quantity)`` with quantity one of
:data:`QUANTITIES`. Energy counters (``energy_mj``) may wrap at ``wraps[rail]`` mJ.
"""
import io
import os
import select

from basics.errors import InputError

QUANTITIES = ("power_mw", "voltage_mv", "current_ma", "energy_mj")

_raw_open = io.open  # patched in tests to simulate permission errors (tests run as root)


class SourceUnavailable(InputError):
    """This kind of source does not exist here (no rails, no command, no package, no service)."""


def access_hint(path):
    """How to grant read access to a root-only sysfs file, in one line."""
    return ("grant read access with 'sudo chmod o+r {}' (until reboot) or a udev rule, "
            "or run as root".format(path))


def permission_error(path):
    return InputError("permission denied reading {}: {}".format(path, access_hint(path)))


def open_sysfs(path):
    """Open a sysfs attribute for repeated reads (unbuffered); one-line errors."""
    try:
        return _raw_open(path, "rb", buffering=0)
    except PermissionError:
        raise permission_error(path) from None
    except (IOError, OSError) as exc:
        raise InputError("cannot open {}: {}".format(path, exc.strerror or exc)) from None


def read_text(path):
    """Whole text of a small file, stripped (NUL and whitespace); one-line errors."""
    handle = open_sysfs(path)
    try:
        return handle.read().decode("utf-8", "replace").strip().strip("\0").strip()
    except PermissionError:
        raise permission_error(path) from None
    except (IOError, OSError) as exc:
        raise InputError("cannot read {}: {}".format(path, exc.strerror or exc)) from None
    finally:
        handle.close()


def parse_number(text, path, unit):
    """The integer (or float) in ``text`` read from ``path``; InputError naming file and value."""
    value = text.strip().split()[0] if text.strip() else ""
    try:
        return float(int(value))
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            raise InputError("malformed value in {}: {!r} (expected a number in {})".format(
                path, text.strip()[:40], unit)) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InputError("malformed value in {}: {!r} (expected a number in {})".format(
                path, text.strip()[:40], unit))
        return number


class SysfsValue(object):
    """One sysfs number file kept open; :meth:`read` re-reads it with one pread at offset 0."""

    __slots__ = ("path", "unit", "_handle", "_fd")

    def __init__(self, path, unit):
        self.path = path
        self.unit = unit
        self._handle = None
        self._fd = None

    def open(self):
        self._handle = open_sysfs(self.path)
        self._fd = self._handle.fileno()

    def read(self):
        try:
            if hasattr(os, "pread"):
                raw = os.pread(self._fd, 64, 0)
            else:  # pragma: no cover - non-Unix
                os.lseek(self._fd, 0, os.SEEK_SET)
                raw = os.read(self._fd, 64)
        except PermissionError:
            raise permission_error(self.path) from None
        except (IOError, OSError) as exc:
            raise InputError("cannot read {}: {}".format(self.path, exc.strerror or exc)) from None
        try:
            return float(int(raw))
        except ValueError:
            return parse_number(raw.decode("utf-8", "replace"), self.path, self.unit)

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def open_all(values):
    """Open every :class:`SysfsValue` of ``values``; on a failure close those opened and re-raise."""
    opened = []
    try:
        for value in values:
            value.open()
            opened.append(value)
    except Exception:
        for value in opened:
            value.close()
        raise
    return opened


class Source(object):
    """Base class of power sources; see the module docstring."""

    kind = "base"
    push = False            # True: samples arrive on their own (fileno() is selectable)
    averaging_s = 0.0       # the sensor's own averaging period
    averaging_note = ""     # where averaging_s comes from (measured, read, assumed)
    # the sensor's model when its readings lag the power in a known way (toolkit.power.lag), so
    # that window energies are corrected for it; None: integrated as read
    sensor = None
    min_period_s = 0.0      # fastest useful sampling period
    plausible = None        # {quantity: (low, high)}; None: PLAUSIBLE

    def __init__(self, columns, policy, description, wraps=None, board=None):
        self.columns = [tuple(c) for c in columns]
        self.policy = policy
        self.description = description
        self.wraps = dict(wraps or {})
        self.board = board
        if self.plausible is None:
            self.plausible = PLAUSIBLE

    @property
    def rails(self):
        seen = []
        for rail, _ in self.columns:
            if rail not in seen:
                seen.append(rail)
        return seen

    def open(self):
        """Open files / start processes (in the sampler process)."""

    def read(self):
        """One sample: a tuple of floats in column order, or None when none is ready (push)."""
        raise NotImplementedError

    def fileno(self):
        """A file descriptor that becomes readable when a push source has data."""
        raise NotImplementedError

    def close(self):
        """Release files and processes; safe to call twice."""

    def info(self):
        """Plain-data description for reports and trace files."""
        return {"source": self.kind, "description": self.description,
                "board": self.board.name if self.board is not None else None,
                "columns": ["{}.{}".format(r, q) for r, q in self.columns],
                "policy": self.policy.to_dict(), "averaging_s": self.averaging_s,
                "averaging_note": self.averaging_note, "wraps_mj": dict(self.wraps),
                "sensor": ({"model": "block average, held", "period_s": self.sensor.period_s}
                           if self.sensor is not None else None)}

    def probe(self):
        """Open, read one sample, check it, close: errors surface before sampling starts."""
        self.open()
        try:
            sample = None
            for _ in range(200):
                sample = self.read()
                if sample is not None:
                    break
                if self.push:
                    select.select([self.fileno()], [], [], 0.05)
            if sample is None:
                raise InputError("{}: no sample arrived".format(self.description))
            self.check(sample)
            return sample
        finally:
            self.close()

    def check(self, sample):
        """Raise InputError on implausible values (units are checked, never guessed)."""
        for (rail, quantity), value in zip(self.columns, sample):
            low, high = self.plausible[quantity]
            if not low <= value <= high:
                raise InputError("implausible {} for rail {} from {}: {:g} (expected {:g}..{:g}; "
                                 "a unit mismatch?)".format(quantity, rail, self.description,
                                                            value, low, high))


# plausible ranges of one rail's reading (INA3221 bus voltage is at most 26 V)
PLAUSIBLE = {
    "power_mw": (-5000.0, 2000000.0),
    "voltage_mv": (-100.0, 30000.0),
    "current_ma": (-5000.0, 100000.0),
    "energy_mj": (0.0, 1e18),
}
