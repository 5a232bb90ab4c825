"""Fake sysfs trees of the Jetsons of the one board table (:mod:`engines.boards`), built under a
tmp path with the real layout, and a PC's RAPL.

For each board the table gives the INA3221 chips (i2c bus-address, channel labels, ``NC`` for
unconnected ones) and the driver follows the JetPack release:

- every chip is a device folder ``sys/devices/platform/<controller>/i2c-<bus>/<bus-addr>`` with
  its ``name`` file (``ina3221x`` on JetPack 4, ``ina3221`` on JetPack 5/6), linked from
  ``sys/bus/i2c/devices/<bus-addr>`` and ``sys/bus/i2c/drivers/<driver>/<bus-addr>``;
- JetPack 4 (``ina3221x`` iio driver): ``iio:deviceN/`` with ``rail_name_K``,
  ``in_{power,voltage,current}K_input``, ``{crit,warn}_current_limit_K``, K = 0..2;
- JetPack 5/6 (``ina3221`` hwmon driver, Documentation/hwmon/ina3221.rst): ``hwmon/hwmonN/``
  (N varies) with ``inK_label``/``inK_input`` (bus mV)/``currK_input`` (mA), K = 1..3, ``in4..6``
  the shunt voltages (uV), ``in7`` the sum of the shunt voltages and ``curr4_input`` the sum of
  the currents, ``samples`` and ``update_interval``; plus a temperature sensor at 0x4c (not an
  INA3221).

The values (mV, mA) are test data; :meth:`FakeJetson.set` changes them between reads.
"""
import os

from engines.boards import DRIVER_NAMES, NOT_CONNECTED, board_by_key, driver_of_jetpack

# fake key -> (board key, JetPack, device-tree model, compatible, {rail: (mV, mA)})
FAKES = {
    "nano": ("nano", "4.6.1", "NVIDIA Jetson Nano Developer Kit",
             ["nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"],
             {"POM_5V_IN": (5072, 400), "POM_5V_GPU": (5064, 24), "POM_5V_CPU": (5056, 96)}),
    "xavier-nx": ("xavier-nx", "4.6.1", "NVIDIA Jetson Xavier NX Developer Kit",
                  ["nvidia,p3509-0000+p3668-0000", "nvidia,tegra194"],
                  {"VDD_IN": (5048, 900), "VDD_CPU_GPU_CV": (5040, 140), "VDD_SOC": (5040, 220)}),
    "agx-xavier": ("agx-xavier", "4.6.1", "Jetson-AGX",
                   ["nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194"],
                   {"GPU": (19072, 24), "CPU": (19072, 25), "SOC": (19072, 65), "CV": (19072, 0),
                    "VDDRQ": (19072, 16), "SYS5V": (5016, 552)}),
    "xavier-nx-jp5": ("xavier-nx", "5.1.2", "NVIDIA Jetson Xavier NX Developer Kit",
                      ["nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"],
                      {"VDD_IN": (5048, 1000), "VDD_CPU_GPU_CV": (5040, 138),
                       "VDD_SOC": (5040, 219)}),
    "orin-nano": ("orin-nano", "6.0", "NVIDIA Jetson Orin Nano Developer Kit",
                  ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"],
                  {"VDD_IN": (5016, 990), "VDD_CPU_GPU_CV": (5008, 87), "VDD_SOC": (5008, 340)}),
    "orin-nx": ("orin-nx", "5.1.2", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
                ["nvidia,p3768-0000+p3767-0000", "nvidia,tegra234"],
                {"VDD_IN": (5000, 1100), "VDD_CPU_GPU_CV": (4992, 120), "VDD_SOC": (4992, 360)}),
    "agx-orin": ("agx-orin", "5.1.2", "NVIDIA Jetson AGX Orin Developer Kit",
                 ["nvidia,p3737-0000+p3701-0000", "nvidia,tegra234"],
                 {"VDD_GPU_SOC": (19040, 240), "VDD_CPU_CV": (19040, 40),
                  "VIN_SYS_5V0": (4984, 520), "VDDQ_VDD2_1V8AO": (4992, 60)}),
}
SHUNT_UOHM = 5000


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def _write_value(path, value):
    """Overwrite a number file in place as sysfs shows it (``"5072\n"``), so that a reader
    holding it open sees the change: one write padded with newlines to the old length (a
    concurrent reader never sees an empty or mixed number), then a truncate."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = "{:d}\n".format(int(value)).encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        old = os.fstat(fd).st_size
        os.pwrite(fd, text + b"\n" * max(0, old - len(text)), 0)
        os.ftruncate(fd, len(text))
    finally:
        os.close(fd)


def _link(link, target):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.relpath(target, os.path.dirname(link)), link)


class FakeJetson(object):
    """A fake Jetson under ``root``: ``rails`` maps label -> files; ``set`` changes values."""

    def __init__(self, root, fake):
        self.root = str(root)
        self.board = fake
        board_key, self.jetpack, model, compatible, values = FAKES[fake]
        self.table = board_by_key(board_key)
        self.driver = driver_of_jetpack(self.jetpack)
        self.rails = {}
        self._sums = []  # (curr4_input path, [current files])
        dt = os.path.join(self.root, "proc", "device-tree")
        os.makedirs(dt, exist_ok=True)
        with open(os.path.join(dt, "model"), "wb") as handle:
            handle.write(model.encode() + b"\0")
        with open(os.path.join(dt, "compatible"), "wb") as handle:
            handle.write(b"\0".join(c.encode() for c in compatible) + b"\0")
        name = DRIVER_NAMES[self.driver]
        for number, (address, labels) in enumerate(self.table.monitors):
            bus = address.split("-")[0]
            device = os.path.join(self.root, "sys", "devices", "platform",
                                  "i2c@{}".format(bus), "i2c-{}".format(bus), address)
            _write(os.path.join(device, "name"), name + "\n")
            _link(os.path.join(self.root, "sys", "bus", "i2c", "devices", address), device)
            _link(os.path.join(self.root, "sys", "bus", "i2c", "drivers", name, address), device)
            if self.driver == "iio":
                self._iio_chip(os.path.join(device, "iio:device{}".format(number)), labels)
            else:
                self._hwmon_chip(os.path.join(device, "hwmon", "hwmon{}".format(3 + 2 * number)),
                                 labels)
        for label, (mv, ma) in values.items():
            self.set(label, mv, ma)
        if self.driver == "hwmon":  # a temperature sensor at 0x4c: not an INA3221
            device = os.path.join(self.root, "sys", "devices", "platform", "i2c@2", "i2c-2",
                                  "2-004c")
            _write(os.path.join(device, "name"), "nct1008\n")
            _link(os.path.join(self.root, "sys", "bus", "i2c", "devices", "2-004c"), device)
            decoy = os.path.join(device, "hwmon", "hwmon1")
            _write(os.path.join(decoy, "name"), "nct1008\n")
            _write(os.path.join(decoy, "in1_label"), "VDD_DECOY\n")
            _write(os.path.join(decoy, "in1_input"), "3300\n")
            _write(os.path.join(decoy, "curr1_input"), "10\n")

    def _iio_chip(self, device, labels):
        _write(os.path.join(device, "name"), "ina3221x\n")
        for k, label in enumerate(labels):
            files = {"power": os.path.join(device, "in_power{}_input".format(k)),
                     "voltage": os.path.join(device, "in_voltage{}_input".format(k)),
                     "current": os.path.join(device, "in_current{}_input".format(k))}
            _write(os.path.join(device, "rail_name_{}".format(k)), label + "\n")
            for extra in ("in_power{}_trigger_input", "in_current{}_trigger_input"):
                _write(os.path.join(device, extra.format(k)), "0\n")
            _write(os.path.join(device, "crit_current_limit_{}".format(k)), "4000 ma\n")
            _write(os.path.join(device, "warn_current_limit_{}".format(k)), "3000 ma\n")
            for path in files.values():
                _write_value(path, 0)
            if label != NOT_CONNECTED:
                self.rails[label] = files
        _write(os.path.join(device, "in_current_sum_input"), "0 ma\n")
        _write(os.path.join(device, "running_mode"), "1\n")

    def _hwmon_chip(self, device, labels):
        _write(os.path.join(device, "name"), "ina3221\n")
        # update_interval = channels x samples x (bus + shunt conversion time) = 3 x 4 x 2.2 ms
        _write(os.path.join(device, "samples"), "4\n")
        _write(os.path.join(device, "update_interval"), "26\n")
        currents = []
        for k, label in enumerate(labels, start=1):
            files = {"voltage": os.path.join(device, "in{}_input".format(k)),
                     "current": os.path.join(device, "curr{}_input".format(k)),
                     "shunt": os.path.join(device, "in{}_input".format(k + 3))}
            _write(os.path.join(device, "in{}_label".format(k)), label + "\n")
            _write(os.path.join(device, "in{}_enable".format(k)), "1\n")
            _write(os.path.join(device, "shunt{}_resistor".format(k)), "{}\n".format(SHUNT_UOHM))
            for suffix, value in (("crit", 8000), ("crit_alarm", 0), ("max", 6000),
                                  ("max_alarm", 0)):
                _write(os.path.join(device, "curr{}_{}".format(k, suffix)), "{}\n".format(value))
            for path in files.values():
                _write_value(path, 0)
            currents.append(files["current"])
            if label != NOT_CONNECTED:
                self.rails[label] = files
        _write(os.path.join(device, "in7_label"), "sum of shunt voltages\n")
        _write_value(os.path.join(device, "in7_input"), 0)
        _write_value(os.path.join(device, "curr4_input"), 0)  # the sum channel: curr4, not curr7
        _write(os.path.join(device, "curr4_crit"), "16000\n")
        _write(os.path.join(device, "curr4_crit_alarm"), "0\n")
        self._sums.append((device, currents))

    def set(self, label, voltage_mv, current_ma, power_mw=None):
        """Change a rail's readings (the next read sees them)."""
        files = self.rails[label]
        _write_value(files["voltage"], voltage_mv)
        _write_value(files["current"], current_ma)
        if "power" in files:
            value = power_mw if power_mw is not None else voltage_mv * current_ma // 1000
            _write_value(files["power"], value)
        if "shunt" in files:
            _write_value(files["shunt"], current_ma * SHUNT_UOHM // 1000)
            for device, currents in self._sums:
                if files["current"] in currents:
                    total = sum(int(open(path).read()) for path in currents)
                    _write_value(os.path.join(device, "curr4_input"), total)
                    _write_value(os.path.join(device, "in7_input"), total * SHUNT_UOHM // 1000)

    def power_mw(self, label):
        """The power the toolkit should read for ``label`` now."""
        files = self.rails[label]
        if "power" in files:
            return float(open(files["power"]).read())
        return float(open(files["voltage"]).read()) * float(open(files["current"]).read()) / 1000.0


def make_fake_rapl(root, packages=1, psys=False, energy_uj=1000000, max_range_uj=262143328850):
    """A PC's powercap tree: ``intel-rapl:N`` packages with core/uncore sub-domains, and psys."""
    base = os.path.join(str(root), "sys", "class", "powercap")
    domains = {}
    for index in range(packages):
        folder = os.path.join(base, "intel-rapl:{}".format(index))
        _rapl_domain(folder, "package-{}".format(index), energy_uj, max_range_uj)
        domains["package-{}".format(index)] = folder
        for sub, name in enumerate(("core", "uncore")):
            sub_folder = os.path.join(folder, "intel-rapl:{}:{}".format(index, sub))
            _rapl_domain(sub_folder, name, energy_uj // 2, max_range_uj)
            domains["package-{}/{}".format(index, name)] = sub_folder
    if psys:
        folder = os.path.join(base, "intel-rapl:{}".format(packages))
        _rapl_domain(folder, "psys", energy_uj, max_range_uj)
        domains["psys"] = folder
    return domains


def _rapl_domain(folder, name, energy_uj, max_range_uj):
    _write(os.path.join(folder, "name"), name + "\n")
    _write(os.path.join(folder, "energy_uj"), "{}\n".format(energy_uj))
    _write(os.path.join(folder, "max_energy_range_uj"), "{}\n".format(max_range_uj))
