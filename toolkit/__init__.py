"""Jetson TensorRT deployment toolkit: runtime strategies, power and energy, CLI (device side)."""
from basics import __version__  # noqa: F401 - the package's version, kept in one place
