"""Power rails, sampling and energy accounting.

- :mod:`toolkit.power.meter`: ``PowerMeter`` (idle baseline, windows, energy per inference);
- :mod:`toolkit.power.config`: ``PowerConfig``;
- :mod:`toolkit.power.sources`: INA3221 sysfs, tegrastats, jetson-stats, RAPL, NVML;
- :mod:`toolkit.power.boards`: which rail is a board's total (the boards: :mod:`engines.boards`);
- :mod:`toolkit.power.lag`: window energy corrected for the INA3221's averaging;
- :mod:`toolkit.power.sampler`: the sampler process;
- :mod:`toolkit.power.energy`: integration of power, differences of counters;
- :mod:`toolkit.power.report`: ``EnergyReport``;
- :mod:`toolkit.power.tracefile`: CSV traces and plots;
- :mod:`toolkit.power.options`: click options for commands that measure energy.
"""
