"""The Jetson's INA3221 power monitors read straight from sysfs (the fastest, most direct source).

Two drivers, found under one root path (discovery is a pure function of it):

- JetPack 4 (``ina3221x`` iio driver):
  ``/sys/bus/i2c/drivers/ina3221x/<bus>-004x/iio:deviceN/`` with ``rail_name_K``,
  ``in_powerK_input`` (mW), ``in_voltageK_input`` (mV), ``in_currentK_input`` (mA), K = 0..2.
  The driver averages each reading over a long window; its default configuration (0x7727:
  64 samples x (1.1 ms + 1.1 ms) x 3 channels) is about 0.42 s, which is what is assumed.
- JetPack 5/6 (``ina3221`` hwmon driver):
  ``/sys/bus/i2c/devices/<bus>-004x/hwmon/hwmonN/`` with ``inK_label``, ``inK_input`` (bus
  voltage, mV), ``currK_input`` (mA), K = 1..3; no power file, so P = V x I. Labels containing
  ``NC`` (not connected) and channel 7 (sum of shunt voltages) are skipped; ``update_interval``
  (ms) is the sensor's averaging period. The hwmon index N varies between boots.
"""
import glob
import os
import re

from basics.errors import InputError
from toolkit.power.boards import detect_board, total_policy
from toolkit.power.lag import BlockAveragingSensor
from toolkit.power.sources.base import (
    PLAUSIBLE,
    Source,
    SourceUnavailable,
    SysfsValue,
    open_all,
    parse_number,
    read_text,
)

IIO_GLOBS = ("sys/bus/i2c/drivers/ina3221x/*/iio:device*", "sys/bus/i2c/devices/*/iio:device*")
HWMON_GLOBS = ("sys/bus/i2c/devices/*-004*/hwmon/hwmon*",
               "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")
JETPACK4_AVERAGING_S = 64 * (1.1e-3 + 1.1e-3) * 3  # the ina3221x driver's default 0x7727

_IIO_RAIL = re.compile(r"^rail_name_(\d+)$")
_HWMON_LABEL = re.compile(r"^in(\d+)_label$")
_NOT_CONNECTED = re.compile(r"(^|[^A-Za-z])NC([^A-Za-z]|$)")


class RailFiles(object):
    """Where one rail's readings live: ``power`` (mW, JetPack 4 only), ``voltage`` (mV),
    ``current`` (mA) file paths, with the driver and channel they came from."""

    def __init__(self, name, driver, device, channel, power=None, voltage=None, current=None):
        self.name = name
        self.driver = driver
        self.device = device
        self.channel = channel
        self.power = power
        self.voltage = voltage
        self.current = current

    def __repr__(self):
        return "RailFiles({!r}, {}, channel {})".format(self.name, self.driver, self.channel)


def _unique_dirs(root, patterns):
    seen, found = set(), []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            real = os.path.realpath(path)
            if os.path.isdir(path) and real not in seen:
                seen.add(real)
                found.append(path)
    return found


def _iio_rails(device):
    name_file = os.path.join(device, "name")
    if os.path.exists(name_file) and read_text(name_file) != "ina3221x":
        return []  # another iio device on the bus
    rails = []
    for entry in sorted(os.listdir(device)):
        match = _IIO_RAIL.match(entry)
        if not match:
            continue
        channel = int(match.group(1))
        name = read_text(os.path.join(device, entry))
        power = os.path.join(device, "in_power{}_input".format(channel))
        if not name or _NOT_CONNECTED.search(name) or not os.path.exists(power):
            continue
        rails.append(RailFiles(name, "iio", device, channel, power=power,
                               voltage=os.path.join(device, "in_voltage{}_input".format(channel)),
                               current=os.path.join(device, "in_current{}_input".format(channel))))
    return rails


def _hwmon_rails(device):
    name_file = os.path.join(device, "name")
    if os.path.exists(name_file) and read_text(name_file) != "ina3221":
        return []  # another sensor at a 0x4x address
    rails = []
    for entry in sorted(os.listdir(device)):
        match = _HWMON_LABEL.match(entry)
        if not match:
            continue
        channel = int(match.group(1))
        if channel == 7:  # sum of shunt voltages, not a rail
            continue
        label = read_text(os.path.join(device, entry))
        voltage = os.path.join(device, "in{}_input".format(channel))
        current = os.path.join(device, "curr{}_input".format(channel))
        if not label or _NOT_CONNECTED.search(label):
            continue
        if not (os.path.exists(voltage) and os.path.exists(current)):
            continue
        rails.append(RailFiles(label, "hwmon", device, channel, voltage=voltage, current=current))
    return rails


def discover_rails(root="/"):
    """All INA3221 rails under ``root`` as :class:`RailFiles` (pure function of the tree).

    Returns ``(rails, driver, averaging_s, averaging_note)``; raises SourceUnavailable saying
    where it looked when there are none.
    """
    rails, driver = [], None
    for device in _unique_dirs(root, IIO_GLOBS):
        rails += _iio_rails(device)
    if rails:
        driver = "iio"
        averaging_s = JETPACK4_AVERAGING_S
        averaging_note = "assumed: the ina3221x driver's default averaging (~0.42 s)"
    else:
        interval_ms = []
        for device in _unique_dirs(root, HWMON_GLOBS):
            found = _hwmon_rails(device)
            rails += found
            interval = os.path.join(device, "update_interval")
            if found and os.path.exists(interval):
                interval_ms.append(parse_number(read_text(interval), interval, "ms"))
        driver = "hwmon" if rails else None
        averaging_s = max(interval_ms) / 1000.0 if interval_ms else 0.0
        averaging_note = ("read from update_interval" if interval_ms
                          else "unknown (no update_interval file)")
    if not rails:
        raise SourceUnavailable("no INA3221 rails found under {}: looked in {}".format(
            root, ", ".join("<root>/" + p for p in IIO_GLOBS + HWMON_GLOBS)))
    names = [rail.name for rail in rails]
    for rail in rails:  # the same label on two chips: qualify it by the chip's address
        if names.count(rail.name) > 1:
            rail.name = "{}@{}".format(rail.name, os.path.basename(
                os.path.dirname(os.path.dirname(rail.device)) if driver == "hwmon"
                else os.path.dirname(rail.device)))
    return rails, driver, averaging_s, averaging_note


class Ina3221Source(Source):
    """INA3221 rails read from sysfs; power in mW (JetPack 4: the driver's own power file;
    JetPack 5/6: voltage x current)."""

    kind = "ina3221"
    plausible = dict(PLAUSIBLE, power_mw=(-5000.0, 200000.0))

    def __init__(self, rails, driver, averaging_s, averaging_note, board, voltage_current=False,
                 root="/"):
        self.rail_files = rails
        self.driver = driver
        self.with_vi = driver == "hwmon" or bool(voltage_current)
        columns = []
        for rail in rails:
            columns.append((rail.name, "power_mw"))
            if self.with_vi:
                columns += [(rail.name, "voltage_mv"), (rail.name, "current_ma")]
        policy = total_policy(board, [rail.name for rail in rails])
        devices = sorted(set(os.path.relpath(rail.device, root) for rail in rails))
        description = "INA3221 via the {} ({}) at {}".format(
            "JetPack 4 ina3221x iio driver" if driver == "iio"
            else "JetPack 5/6 ina3221 hwmon driver",
            "mW file" if driver == "iio" else "P = V x I", ", ".join("/" + d for d in devices))
        Source.__init__(self, columns, policy, description, board=board)
        self.averaging_s = averaging_s
        self.averaging_note = averaging_note
        self._files = None
        # the INA3221 keeps each cycle's mean until the next: readings lag by about a period
        self.sensor = BlockAveragingSensor(averaging_s) if averaging_s > 0 else None


    def open(self):
        self.close()
        values = []
        for rail in self.rail_files:
            if self.driver == "iio":
                values.append(SysfsValue(rail.power, "mW"))
                if self.with_vi:
                    values += [SysfsValue(rail.voltage, "mV"), SysfsValue(rail.current, "mA")]
            else:
                values += [SysfsValue(rail.voltage, "mV"), SysfsValue(rail.current, "mA")]
        self._files = open_all(values)

    def read(self):
        values = [f.read() for f in self._files]
        if self.driver == "iio":
            return tuple(values)
        out = []
        for i in range(0, len(values), 2):
            volt_mv, curr_ma = values[i], values[i + 1]
            out += [volt_mv * curr_ma / 1000.0, volt_mv, curr_ma]
        return tuple(out)

    def check(self, sample):
        Source.check(self, sample)
        if self.driver == "iio" and self.with_vi:  # the driver's power must match V x I
            for i in range(0, len(sample), 3):
                power, volt, curr = sample[i:i + 3]
                expected = volt * curr / 1000.0
                if abs(power - expected) > 0.2 * abs(expected) + 100.0:
                    raise InputError(
                        "implausible INA3221 reading for {}: power {:g} mW but voltage x current "
                        "= {:g} mW (files {}, {}, {})".format(
                            self.columns[i][0], power, expected, *self._paths(i // 3)))

    def _paths(self, index):
        rail = self.rail_files[index]
        return rail.power, rail.voltage, rail.current

    def close(self):
        for value in self._files or ():
            value.close()
        self._files = None


def discover(config):
    """An :class:`Ina3221Source` for ``config.sysfs_root`` (SourceUnavailable if none)."""
    rails, driver, averaging_s, note = discover_rails(config.sysfs_root)
    board = detect_board(config.sysfs_root)
    return Ina3221Source(rails, driver, averaging_s, note, board,
                         voltage_current=config.voltage_current, root=config.sysfs_root)
