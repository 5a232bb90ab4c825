"""Two Triton Python-backend models for benchmarks/triton_load.py's BLS side (copied into its
repository as ``model.py``; ``ROLE`` picks which).

- ``engine``: one ONNX model on ONNX Runtime (a stand-in for Triton's onnxruntime backend, which
  the nvidia-pytriton wheel's Triton lacks);
- ``bls``: the single-model strategy calling that engine model through BLS (one Triton request per
  engine per batch), then softmax, label and confidence, as the toolkit's Single does.
"""
import json
import os

import numpy as np

ROLE = "engine"


class TritonPythonModel(object):
    def initialize(self, args):
        import triton_python_backend_utils as pb_utils
        self.pb = pb_utils
        config = json.loads(args["model_config"])
        self.params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        if ROLE == "engine":
            import onnxruntime
            here = os.path.join(args["model_repository"], str(args["model_version"]))
            self.session = onnxruntime.InferenceSession(os.path.join(here, "model.onnx"),
                                                        providers=["CPUExecutionProvider"])

    def execute(self, requests):
        pb = self.pb
        if ROLE == "engine":
            out = []
            for request in requests:
                x = pb.get_input_tensor_by_name(request, "input").as_numpy()
                logits = self.session.run(["logits"], {"input": x})[0]
                out.append(pb.InferenceResponse(output_tensors=[pb.Tensor("logits", logits)]))
            return out
        images = [pb.get_input_tensor_by_name(r, "images").as_numpy() for r in requests]
        batch = np.concatenate(images) if len(images) > 1 else images[0]
        call = pb.InferenceRequest(model_name=self.params["engine"],
                                   requested_output_names=["logits"],
                                   inputs=[pb.Tensor("input", np.ascontiguousarray(batch))])
        answer = call.exec()
        if answer.has_error():
            error = pb.TritonError(answer.error().message())
            return [pb.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        logits = pb.get_output_tensor_by_name(answer, "logits").as_numpy()
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
        labels, confidence = probs.argmax(axis=1), probs.max(axis=1)
        out, start = [], 0
        for part in images:
            end = start + len(part)
            out.append(pb.InferenceResponse(output_tensors=[
                pb.Tensor("labels", labels[start:end].astype(np.int64).reshape(-1, 1)),
                pb.Tensor("confidence", confidence[start:end].reshape(-1, 1)),
                pb.Tensor("probs", probs[start:end])]))
            start = end
        return out
