"""What several benchmarks share: interleaved timing rounds, and an untrained model of
``export.models`` exported to ONNX (timing does not depend on the weights)."""
import os
import statistics
import time


def interleaved(sides, rounds, clock=time.perf_counter, pick=statistics.median):
    """``sides``: {name: callable() running one pass}; ``pick`` (the median) of each one's seconds
    per pass over ``rounds`` rounds, the order rotating every round, after one untimed warm-up
    pass each. ``clock``: the timer (the wall clock by default)."""
    names = list(sides)
    for name in names:
        sides[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            sides[name]()
            times[name].append(clock() - start)
    return {name: float(pick(values)) for name, values in times.items()}


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
