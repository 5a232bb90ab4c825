"""Fake sysfs trees of every Jetson in the board table (and a PC's RAPL), built under a tmp path.

Each board lists its INA3221 chips as they appear on the real device: JetPack 4 boards use the
``ina3221x`` iio layout, JetPack 5/6 boards the ``ina3221`` hwmon layout (with a varying hwmon
index, unconnected ``NC`` channels, the channel-7 shunt sum and a decoy sensor at a 0x4x address).
Values can be changed between reads with :meth:`FakeJetson.set`.
"""
import os

# board -> (device-tree model, compatible, driver, [(chip address, [(label, mV, mA), ...])])
BOARDS = {
    "nano": ("NVIDIA Jetson Nano Developer Kit",
             ["nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"], "iio",
             [("6-0040", [("POM_5V_IN", 5072, 400), ("POM_5V_GPU", 5064, 24),
                          ("POM_5V_CPU", 5056, 96)])]),
    "xavier-nx": ("NVIDIA Jetson Xavier NX Developer Kit",
                  ["nvidia,p3509-0000+p3668-0000", "nvidia,tegra194"], "iio",
                  [("7-0040", [("VDD_IN", 5048, 900), ("VDD_CPU_GPU_CV", 5040, 140),
                               ("VDD_SOC", 5040, 220)])]),
    "agx-xavier": ("Jetson-AGX", ["nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194"], "iio",
                   [("1-0040", [("GPU", 19072, 24), ("CPU", 19072, 25), ("SOC", 19072, 65)]),
                    ("1-0041", [("CV", 19072, 0), ("VDDRQ", 19072, 16), ("SYS5V", 5016, 552)])]),
    "xavier-nx-jp5": ("NVIDIA Jetson Xavier NX Developer Kit",
                      ["nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"], "hwmon",
                      [("7-0040", [("VDD_IN", 5048, 1000), ("VDD_CPU_GPU_CV", 5040, 138),
                                   ("VDD_SOC", 5040, 219)])]),
    "orin-nano": ("NVIDIA Jetson Orin Nano Developer Kit",
                  ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"], "hwmon",
                  [("1-0040", [("VDD_IN", 5016, 990), ("VDD_CPU_GPU_CV", 5008, 87),
                               ("VDD_SOC", 5008, 340)])]),
    "orin-nx": ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
                ["nvidia,p3768-0000+p3767-0000", "nvidia,tegra234"], "hwmon",
                [("1-0040", [("VDD_IN", 5000, 1100), ("VDD_CPU_GPU_CV", 4992, 120),
                             ("VDD_SOC", 4992, 360)])]),
    "agx-orin": ("NVIDIA Jetson AGX Orin Developer Kit",
                 ["nvidia,p3737-0000+p3701-0000", "nvidia,tegra234"], "hwmon",
                 [("1-0040", [("VDD_GPU_SOC", 19040, 240), ("VDD_CPU_CV", 19040, 40),
                              ("VIN_SYS_5V0", 4984, 520)]),
                  ("1-0041", [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 4992, 60), ("NC", 0, 0)])]),
}


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def _write_value(path, value):
    """Overwrite a number file in place with one fixed-width write: a sampler reading it at the
    same moment never sees an empty file (as with real sysfs attributes)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, "{:>12d}\n".format(int(value)).encode(), 0)
    finally:
        os.close(fd)


class FakeJetson(object):
    """A fake Jetson under ``root``: ``rails`` maps label -> files; ``set`` changes values."""

    def __init__(self, root, board):
        self.root = str(root)
        self.board = board
        model, compatible, driver, chips = BOARDS[board]
        self.driver = driver
        self.rails = {}
        dt = os.path.join(self.root, "proc", "device-tree")
        os.makedirs(dt, exist_ok=True)
        with open(os.path.join(dt, "model"), "wb") as handle:
            handle.write(model.encode() + b"\0")
        with open(os.path.join(dt, "compatible"), "wb") as handle:
            handle.write(b"\0".join(c.encode() for c in compatible) + b"\0")
        for number, (address, channels) in enumerate(chips):
            if driver == "iio":
                device = os.path.join(self.root, "sys", "bus", "i2c", "drivers", "ina3221x",
                                      address, "iio:device{}".format(number))
                self._iio_chip(device, channels)
            else:
                device = os.path.join(self.root, "sys", "bus", "i2c", "devices", address,
                                      "hwmon", "hwmon{}".format(3 + 2 * number))
                self._hwmon_chip(device, channels)
        if driver == "hwmon":  # a temperature sensor at 0x4c: not an INA3221
            decoy = os.path.join(self.root, "sys", "bus", "i2c", "devices", "2-004c", "hwmon",
                                 "hwmon1")
            _write(os.path.join(decoy, "name"), "nct1008\n")
            _write(os.path.join(decoy, "in1_label"), "VDD_DECOY\n")
            _write(os.path.join(decoy, "in1_input"), "3300\n")
            _write(os.path.join(decoy, "curr1_input"), "10\n")

    def _iio_chip(self, device, channels):
        for k, (label, mv, ma) in enumerate(channels):
            files = {"power": os.path.join(device, "in_power{}_input".format(k)),
                     "voltage": os.path.join(device, "in_voltage{}_input".format(k)),
                     "current": os.path.join(device, "in_current{}_input".format(k))}
            _write(os.path.join(device, "rail_name_{}".format(k)), label + "\n")
            for extra in ("in_power{}_trigger_input", "in_current{}_trigger_input"):
                _write(os.path.join(device, extra.format(k)), "0\n")
            _write(os.path.join(device, "crit_current_limit_{}".format(k)), "4000 ma\n")
            self.rails[label] = files
            self.set(label, mv, ma)
        _write(os.path.join(device, "in_current_sum_input"), "0 ma\n")
        _write(os.path.join(device, "running_mode"), "1\n")
        _write(os.path.join(device, "name"), "ina3221x\n")

    def _hwmon_chip(self, device, channels):
        _write(os.path.join(device, "name"), "ina3221\n")
        _write(os.path.join(device, "update_interval"), "36\n")
        for k, (label, mv, ma) in enumerate(channels, start=1):
            _write(os.path.join(device, "in{}_label".format(k)), label + "\n")
            _write(os.path.join(device, "in{}_input".format(k + 3)), "40\n")  # shunt voltage
            files = {"voltage": os.path.join(device, "in{}_input".format(k)),
                     "current": os.path.join(device, "curr{}_input".format(k))}
            _write(os.path.join(device, "curr{}_crit".format(k)), "8000\n")
            if label == "NC":
                _write(files["voltage"], "0\n")
                _write(files["current"], "0\n")
                continue
            self.rails[label] = files
            self.set(label, mv, ma)
        _write(os.path.join(device, "in7_label"), "sum of shunt voltages\n")
        _write(os.path.join(device, "in7_input"), "120\n")
        _write(os.path.join(device, "curr7_input"), "1000\n")

    def set(self, label, voltage_mv, current_ma, power_mw=None):
        """Change a rail's readings (the next read sees them)."""
        files = self.rails[label]
        _write_value(files["voltage"], voltage_mv)
        _write_value(files["current"], current_ma)
        if "power" in files:
            value = power_mw if power_mw is not None else voltage_mv * current_ma // 1000
            _write_value(files["power"], value)

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
