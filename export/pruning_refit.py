"""Closed-form least-squares restoration of a layer's output (the refit step of energy-aware pruning).

For a Conv2d or Linear layer, calibration images give the layer's im2col'd inputs ``X`` (from the
model being pruned) and target outputs ``Y`` (from the reference model, before this round's
pruning). Each output channel ``m`` is refitted over its kept weights ``K_m`` (plus a bias):
``min_w ||X[:, K_m] w + b - Y[:, m]||^2``. Only the Gram matrices ``A^T A``, ``A^T Y`` and
``sum(Y^2)`` (``A = [X, 1]``) are kept, so trying another set of kept weights costs one small
solve, and the output error of any weights follows in closed form:
``||A w - y||^2 = y.y - 2 w.(A^T y) + w^T (A^T A) w``.
"""
import numpy as np
import torch
from scipy import linalg as scipy_linalg
from torch import nn
from torch.nn import functional as F

RIDGE = 1e-6  # relative Tikhonov term: RIDGE * mean(diag(A^T A)), for rank-deficient inputs


class LayerSystem(object):
    """Gram matrices of one layer per group: ``gram[g]`` (D+1, D+1), ``cross[g]`` (D+1, M/g),
    ``yy[g]`` (M/g,), in float64; the last column/row is the bias (constant 1 input)."""

    def __init__(self, gram, cross, yy):
        self.gram = gram
        self.cross = cross
        self.yy = yy
        self._ridge = {}
        self._inverse = {}

    @property
    def groups(self):
        return len(self.gram)

    @property
    def total_yy(self):
        return float(sum(float(y.sum()) for y in self.yy))

    def ridge(self, group):
        if group not in self._ridge:
            self._ridge[group] = RIDGE * max(float(np.mean(np.diag(self.gram[group]))), 1e-12)
        return self._ridge[group]

    def solve(self, group, keep, columns=None):
        """Least-squares weights (len(keep)+1, columns) over the kept input columns ``keep`` (index
        array) for output ``columns`` of ``group`` (all when None); the last row is the bias.

        With few weights removed, the equality-constrained solution from the full system's
        inverse P = (A^T A + rI)^-1 is cheaper: w = w* - P[:, Z] P[Z, Z]^-1 w*[Z] for the removed
        set Z and w* = P A^T y; with many removed, the kept system is solved directly. Both give
        the minimizer of ||A w - y||^2 + r ||w||^2 with w[Z] = 0.
        """
        size = self.gram[group].shape[0]
        index = np.append(np.asarray(keep, dtype=np.int64), size - 1)
        cross = self.cross[group] if columns is None else self.cross[group][:, columns]
        removed = np.setdiff1d(np.arange(size - 1), index[:-1], assume_unique=True)
        if len(removed) < len(index):
            inverse = self._full_inverse(group)
            full = inverse @ cross
            if len(removed):
                full = full - inverse[:, removed] @ _solve_spd(
                    inverse[np.ix_(removed, removed)], full[removed])
            return full[index]
        gram = self.gram[group][np.ix_(index, index)] + self.ridge(group) * np.eye(len(index))
        return _solve_spd(gram, cross[index])

    def _full_inverse(self, group):
        if group not in self._inverse:
            gram = self.gram[group] + self.ridge(group) * np.eye(self.gram[group].shape[0])
            self._inverse[group] = _solve_spd(gram, np.eye(gram.shape[0]))
        return self._inverse[group]

    def residual(self, group, keep, weights, columns=None):
        """Squared output error per output column for ``weights`` from :meth:`solve`."""
        index = np.append(np.asarray(keep, dtype=np.int64), self.gram[group].shape[0] - 1)
        gram = self.gram[group][np.ix_(index, index)]
        cross = self.cross[group][index] if columns is None else self.cross[group][index][:, columns]
        yy = self.yy[group] if columns is None else self.yy[group][columns]
        quad = np.einsum("im,ij,jm->m", weights, gram, weights)
        return np.maximum(yy - 2.0 * np.sum(weights * cross, axis=0) + quad, 0.0)


def _solve_spd(matrix, rhs):
    try:
        return scipy_linalg.solve(matrix, rhs, assume_a="pos", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):  # not numerically positive definite
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def build_system(model, reference, name, images, batch_size=64):
    """Accumulate the :class:`LayerSystem` of module ``name``: inputs from ``model``, targets from
    ``reference`` (a module of the same name), over ``images`` (float32 NCHW numpy)."""
    layer = dict(model.named_modules())[name]
    target_layer = dict(reference.named_modules())[name]
    captured = {}
    hooks = [layer.register_forward_hook(lambda mod, args, out: captured.__setitem__("x", args[0])),
             target_layer.register_forward_hook(lambda mod, args, out: captured.__setitem__("y", out))]
    gram = cross = yy = None
    was = (model.training, reference.training)
    model.eval()
    reference.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(images[start:start + batch_size])
                model(batch)
                reference(batch)
                columns, targets = layer_columns(layer, captured["x"], captured["y"])
                if gram is None:
                    gram = [0.0] * len(columns)
                    cross = [0.0] * len(columns)
                    yy = [0.0] * len(columns)
                for g, (a, y) in enumerate(zip(columns, targets)):
                    a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], dim=1).double()
                    y = y.double()
                    gram[g] = gram[g] + (a.T @ a).numpy()
                    cross[g] = cross[g] + (a.T @ y).numpy()
                    yy[g] = yy[g] + (y * y).sum(dim=0).numpy()
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was[0])
        reference.train(was[1])
    return LayerSystem(gram, cross, yy)


def layer_columns(layer, inputs, outputs):
    """Per group: (im2col'd inputs (rows, D), targets (rows, M/g)) of a Conv2d or Linear call."""
    if isinstance(layer, nn.Linear):
        return [inputs.reshape(-1, inputs.shape[-1])], [outputs.reshape(-1, outputs.shape[-1])]
    if not isinstance(layer, nn.Conv2d):
        raise TypeError("only Conv2d and Linear layers can be refitted, not {}".format(
            type(layer).__name__))
    padding = layer.padding
    if isinstance(padding, str):  # 'same' / 'valid'
        padding = (0, 0) if padding == "valid" else tuple(
            d * (k - 1) // 2 for d, k in zip(layer.dilation, layer.kernel_size))
    cols = F.unfold(inputs, layer.kernel_size, dilation=layer.dilation, padding=padding,
                    stride=layer.stride)  # (B, C*R*S, L), channel-major like the weight
    cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    targets = outputs.permute(0, 2, 3, 1).reshape(-1, outputs.shape[1])
    groups = layer.groups
    per_in = cols.shape[1] // groups
    per_out = targets.shape[1] // groups
    return ([cols[:, g * per_in:(g + 1) * per_in] for g in range(groups)],
            [targets[:, g * per_out:(g + 1) * per_out] for g in range(groups)])


def flat_weight(layer):
    """The layer's weight as float64 numpy (M, D) and its bias (M,) (zeros when it has none)."""
    weight = layer.weight.detach().double().numpy().reshape(layer.weight.shape[0], -1)
    bias = np.zeros(weight.shape[0]) if layer.bias is None else layer.bias.detach().double().numpy()
    return weight.copy(), bias.copy()


def set_weight(layer, weight, bias, norm=None):
    """Write refitted (M, D) weights and (M,) bias into ``layer``. A layer without a bias keeps
    none: its bias goes into the BatchNorm ``norm`` that follows it (running_mean -= bias, exact
    in eval mode), or a bias parameter is added when there is no such BatchNorm."""
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight).reshape(layer.weight.shape).to(layer.weight.dtype))
        bias_t = torch.from_numpy(np.asarray(bias)).to(layer.weight.dtype)
        if layer.bias is not None:
            layer.bias.copy_(bias_t)
        elif norm is not None and norm.track_running_stats:
            norm.running_mean.sub_(bias_t)
        else:
            layer.bias = nn.Parameter(bias_t.clone())
