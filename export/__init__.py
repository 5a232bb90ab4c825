"""Host side: PyTorch -> ONNX export, ONNX checks, parity, and model-preparation recipes."""
