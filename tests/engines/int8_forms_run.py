"""Run under an emulated CPU by tests/engines/test_cpu_int8_emulated.py (not a test itself):
``python -m tests.engines.int8_forms_run DATA.npz QDQ.onnx U8S8.onnx ENGINE`` prints, as JSON, the
INT8 form this CPU gets through the product's path (``engines.load.load_engine`` of the Q/DQ
model), the test accuracy of that engine and of the full-range ``u8s8`` form, and what loading
``ENGINE`` (an INT8 engine built elsewhere; "" for none) says. Imports numpy, onnx and
onnxruntime only (no torch: everything under emulation is slow)."""
import json
import sys

import numpy as np


def accuracy(engine, data):
    name = engine.outputs[0].name
    logits = np.concatenate([engine.infer({"input": data["images"][i:i + 64]})[name]
                             for i in range(0, len(data["images"]), 64)])
    return float(np.mean(logits.argmax(1) == data["labels"]))


def main(data_path, qdq_path, u8s8_path, engine_path):
    from basics.errors import ToolkitError
    from engines.cpu_int8 import this_cpu_int8_path
    from engines.load import load_engine
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    data = dict(np.load(data_path))
    with load_engine(qdq_path, threads=1) as product, \
            OnnxRuntimeEngine(u8s8_path, threads=1) as full_range:
        result = {"form": this_cpu_int8_path().to_dict(), "product": accuracy(product, data),
                  "u8s8": accuracy(full_range, data), "engine": "not given"}
    if engine_path:
        try:
            load_engine(engine_path, threads=1).close()
            result["engine"] = "loaded"
        except ToolkitError as exc:
            result["engine"] = "{}: {}".format(type(exc).__name__, exc)
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
