"""Analytical energy model of a CNN, after Yang, Chen and Sze, "Designing Energy-Efficient
Convolutional Neural Networks using Energy-Aware Pruning", CVPR 2017 (arXiv:1611.05128).

Energy of a layer = MACs x e_MAC + sum over memory levels of (accesses at the level x its cost).
Costs are normalized to one 16-bit MAC: DRAM 200, global buffer 6, inter-PE array 2, register
file (RF) 1, MAC 1 (the paper's figures, from Eyeriss in 65 nm). ``estimate_onnx(model, config)``
returns a :class:`ModelEnergy` with one row per layer; calibrated (``fit_calibration``) the
figures become millijoules. The paper finds access counts with an optimizer over Eyeriss's
row-stationary (RS) mappings; this module uses a simplified, explicit RS-like count instead.

Notation, per layer: N images (the batch: the model's own when its ONNX fixes one, else the
config's, 1 by default; per-image figures divide by it), C input channels in G groups
(Cg = C/G), M filters, R x S kernel, H x W input, E x F output; nnz = non-zero weights.

Assumptions (every one is a modelling choice, not a measurement):

1. Layer by layer (as in the paper): a conv/fc layer reads its input from DRAM once, reads its
   stored weights from DRAM once per inference and writes its output to DRAM once.
2. Global buffer: an input value is read once per pass of up to ``filters_per_pass`` (16) live
   filters of its group; weights are read once per image; partial sums are accumulated in the
   array over ``channels_per_pass`` (16) input channels, and spill to the buffer between passes
   (write + read back), then are written once: outputs x (2 ceil(Cg / 16) - 1).
3. Inter-PE array (RS primitive: one filter row x one input row -> one output row, on one PE):
   a filter row enters a PE once per output row (weights: N E nnz); an input row of W values is
   delivered once per output row and (group, channel, kernel row), multicast to a pass of 16
   filters (N E W sum ceil(k / 16), k = filters with a non-zero row there); each PE hands its F
   partial sums on for accumulation (N E F x non-zero filter rows).
4. Register file: each MAC reads a weight, an input and a partial sum and writes the partial sum
   (4 RF accesses per MAC). MACs = N E F nnz (dense: N E F M Cg R S; padding taps are counted).
   A bias add counts as one MAC-equivalent op per output.
5. Weight sparsity: zero weights are skipped -- no MAC, no RF/array access; an all-zero filter
   row is not delivered; a filter with no non-zero is not a pass member. Stored weights are dense
   (every weight) or sparse: each non-zero carries an index of ``index_bits`` (4) bits, i.e.
   nnz (1 + 4 / bits) words; ``weight_format="auto"`` stores whichever is smaller (DRAM and
   buffer). The index's decoding energy inside the PE is not modelled.
   Activation sparsity (only when measured on data: ``toolkit energy --data``,
   :mod:`energy_model.activations`; else every activation counts as non-zero): with a
   share z of a conv/fc layer's input entries zero (spread evenly over the weights), a MAC with
   a zero input is skipped (MACs x (1 - z); its weight read and partial-sum read/write in the RF
   too; the input itself is still read from the RF, to detect the zero), and the input is
   read from DRAM compressed when that is smaller: non-zeros with an index of ``index_bits``
   each, (1 - z) (1 + 4 / bits) words per entry. Global-buffer and array traffic keep the zeros
   (gating happens in the PE, as in Eyeriss). The output a layer writes to DRAM (after the
   unary element-wise ops fused onto it, e.g. its ReLU) is compressed the same way, with its
   own measured zero share.
6. Bit width: an access moves bits/16 of a 16-bit word, so every access energy scales by bits/16
   (8-bit moves half the bytes); a MAC scales by (bits/16)^2 (an array multiplier's area and
   energy grow with the square of the width; Horowitz, ISSCC 2014, gives 0.2 pJ for an 8-bit vs
   3.1 pJ for a 32-bit integer multiply). Access counts themselves do not change with bits.
7. fc (Gemm, MatMul with a constant operand) is a 1x1 convolution on a 1x1 map (a MatMul over
   (..., T, K) has T positions sharing the weights). A MatMul of two activations counts its
   second operand as dense weights. ConvTranspose (grouped too) is the same formula with the
   kernel applied at every input pixel (E x F -> H x W, each pixel scattered over the kernel):
   MACs = N C H W (M/G) R S, weights (C, M/G, R, S) as laid out in ONNX.
8. Element-wise layers (Add, Mul, Relu, BatchNormalization when not folded into the conv, ...)
   and pooling run fused on the producer's output while it sits in the global buffer: no DRAM;
   each activation operand is read once from the buffer (counted at the output's size), each
   output written once; ops = outputs x max(1, operands - 1) (pooling: x window size), each op
   a MAC-equivalent with 2 RF accesses. Layout ops (Reshape, Flatten, Concat, Transpose, Q/DQ
   ...) cost nothing. Other ops are costed as element-wise and flagged with ``*``.
9. Q/DQ models: the integer weights behind a DequantizeLinear (minus the zero point) give the
   sparsity; the bit width is the config's, not read from the graph.
"""
from energy_model.activations import ActivationSparsity, measure_activation_sparsity
from energy_model.calibration import (
                                              Calibration,
                                              Measurement,
                                              fit_calibration,
                                              load_measurements,
)
from energy_model.formulas import (
                                              AccessCosts,
                                              EnergyModelConfig,
                                              LayerEnergy,
                                              LayerShape,
                                              WeightStats,
                                              layer_energy,
)
from energy_model.onnx_graph import clear_cache, estimate_onnx
from energy_model.report import ModelEnergy

__all__ = ["AccessCosts", "ActivationSparsity", "Calibration", "EnergyModelConfig", "LayerEnergy", "LayerShape",
           "Measurement", "ModelEnergy", "WeightStats", "clear_cache", "estimate_onnx",
           "fit_calibration", "layer_energy", "load_measurements", "measure_activation_sparsity"]
