"""Shared basics under every package: errors, lazy imports, atomic file I/O, stats, progress bars
and the version. Imports nothing of the project's other packages (engines, calibration, export,
toolkit)."""
__version__ = "0.1.0"
