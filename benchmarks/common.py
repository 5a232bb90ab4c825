"""What several benchmarks share: an untrained model of ``export.models`` exported to ONNX (timing
does not depend on the weights)."""
import os


def export_untrained(folder, factory="small_cnn"):
    """``export.models.<factory>`` (untrained, 1x8x8 input, dynamic batch) -> ``folder/<factory>.onnx``
    (input 'input', output 'logits', opset 13); returns the path."""
    import warnings

    import torch

    from export import models
    path = os.path.join(folder, factory + ".onnx")
    model = getattr(models, factory)().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), path, dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path
