"""Calibration and evaluation data: sources, preprocessing, INT8 calibrators, explicit quantization."""
