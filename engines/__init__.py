"""Engines: one interface over TensorRT and ONNX Runtime, building ONNX -> engine, engine files."""
