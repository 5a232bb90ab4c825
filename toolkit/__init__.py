"""Jetson TensorRT deployment toolkit: runtime strategies, power and energy, CLI (device side)."""
__version__ = "0.1.0"
