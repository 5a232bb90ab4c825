"""Structured (channel) pruning: find the channels a model can lose, choose them, rebuild smaller layers.

A channel of a Conv2d (groups=1) is removable when its output runs through a plain chain to ONE
consumer: ``conv -> [BatchNorm2d | activation | pooling | dropout]* -> Conv2d (groups=1)`` or
``... -> flatten -> Linear``, every tensor on the way having a single user. Convolutions whose
output feeds a residual Add, a Concat, a grouped/depthwise convolution or several consumers are
left as they are (their channels are tied to other tensors). The chains are found by tracing the
model with ``torch.fx``. Removing channels slices the producer's filters and bias, the BatchNorm
statistics and the consumer's input weights; the consumer is then refitted by least squares.
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from basics.errors import InputError

PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU,
                nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Mish, nn.Dropout, nn.Dropout2d,
                nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
PASS_FUNCTIONS = (F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.hardswish, F.sigmoid, F.tanh,
                  F.dropout, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
                  F.adaptive_max_pool2d, torch.relu, torch.sigmoid, torch.tanh)
PASS_METHODS = ("relu", "relu_", "sigmoid", "tanh", "contiguous")


class Chain(object):
    """``producer`` conv -> ``norms`` (BatchNorm2d names) -> ``consumer`` (Conv2d or Linear);
    ``flatten``: the consumer is a Linear after a flatten (``positions`` features per channel)."""

    def __init__(self, producer, norms, consumer, flatten=False):
        self.producer = producer
        self.norms = list(norms)
        self.consumer = consumer
        self.flatten = flatten

    def __repr__(self):
        return "Chain({} -> {} -> {})".format(self.producer, self.norms, self.consumer)


def find_chains(model):
    """The :class:`Chain` of every conv whose output channels can be removed."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError ...
        raise InputError("channel pruning traces the model with torch.fx, which fails here ({}: {}); "
                         "use --granularity weights".format(type(exc).__name__,
                                                            str(exc).splitlines()[0])) from None
    modules = dict(model.named_modules())
    chains = []
    for node in graph.nodes:
        if node.op == "call_module" and _plain_conv(modules.get(node.target)):
            chain = _follow(node, modules)
            if chain is not None:
                chains.append(chain)
    return chains


def _plain_conv(module):
    return isinstance(module, nn.Conv2d) and module.groups == 1


def _follow(start, modules):
    norms, flatten, current = [], False, start
    while True:
        users = list(current.users)
        if len(users) != 1:
            return None
        user = users[0]
        if not user.args or user.args[0] is not current or any(
                arg is current for arg in list(user.args[1:]) + list(user.kwargs.values())):
            return None
        if user.op == "call_module":
            module = modules.get(user.target)
            if isinstance(module, nn.BatchNorm2d) and not flatten:
                norms.append(user.target)
            elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
                flatten = True
            elif isinstance(module, PASS_MODULES) and not flatten:
                pass
            elif _plain_conv(module) and not flatten:
                return Chain(start.target, norms, user.target)
            elif isinstance(module, nn.Linear) and flatten:
                return Chain(start.target, norms, user.target, flatten=True)
            else:
                return None
        elif user.op == "call_function" and user.target in PASS_FUNCTIONS and not flatten:
            pass
        elif user.op == "call_function" and user.target is torch.flatten and _flattens_from_1(user):
            flatten = True
        elif user.op == "call_method" and user.target in PASS_METHODS and not flatten:
            pass
        elif user.op == "call_method" and user.target == "flatten" and _flattens_from_1(user):
            flatten = True
        else:
            return None
        current = user


def _flattens_from_1(node):
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return start == 1 and end == -1


def column_groups(model, chain):
    """Consumer input columns of each producer channel: (channels, columns per channel)."""
    modules = dict(model.named_modules())
    producer = modules[chain.producer]
    consumer = modules[chain.consumer]
    channels = producer.out_channels
    if isinstance(consumer, nn.Linear):
        if consumer.in_features % channels:
            raise InputError("{} has {} inputs, not a multiple of {}'s {} channels".format(
                chain.consumer, consumer.in_features, chain.producer, channels))
        return channels, consumer.in_features // channels
    return channels, consumer.kernel_size[0] * consumer.kernel_size[1]


def choose_channels(system, channels, per_channel, min_keep, step, bound, multiple=1):
    """Greedy channel removal on the consumer's :class:`LayerSystem` (one group).

    Removes at least ``step`` channels of least output contribution (``w_c^T G_cc w_c`` summed
    over outputs, with the refitted weights), so that the kept count is a multiple of
    ``multiple``, refits by least squares, and goes on while the relative output error grows by
    at most ``bound`` and at least ``min_keep`` channels stay.
    Returns (kept channel indices, weights (kept columns + bias, M), error before, error after).
    """
    total = system.total_yy or 1.0
    keep = np.arange(channels)
    weights = system.solve(0, _cols(keep, per_channel))
    error0 = float(system.residual(0, _cols(keep, per_channel), weights).sum()) / total
    error = error0
    while True:
        count = (len(keep) - step) // multiple * multiple
        if count < max(1, min_keep):
            break
        scores = _contributions(system, keep, per_channel, weights)
        candidate = np.sort(keep[np.argsort(scores, kind="stable")[len(keep) - count:]])
        cols = _cols(candidate, per_channel)
        trial = system.solve(0, cols)
        trial_error = float(system.residual(0, cols, trial).sum()) / total
        if trial_error - error0 > bound:
            break
        keep, weights, error = candidate, trial, trial_error
    return keep, weights, error0, error


def _cols(channels, per_channel):
    return (np.asarray(channels)[:, None] * per_channel + np.arange(per_channel)[None, :]).reshape(-1)


def _contributions(system, keep, per_channel, weights):
    gram = system.gram[0]
    scores = np.empty(len(keep))
    for i, channel in enumerate(keep):
        cols = np.arange(channel * per_channel, (channel + 1) * per_channel)
        w = weights[i * per_channel:(i + 1) * per_channel]
        scores[i] = float(np.einsum("im,ij,jm->", w, gram[np.ix_(cols, cols)], w))
    return scores


def apply_channels(model, chain, keep, consumer_weights):
    """Rebuild ``chain``'s layers with only the ``keep`` channels; the consumer gets
    ``consumer_weights`` (kept columns + bias row, outputs) from :func:`choose_channels`."""
    modules = dict(model.named_modules())
    keep_t = torch.as_tensor(np.asarray(keep), dtype=torch.long)
    producer = modules[chain.producer]
    _replace(model, chain.producer, _conv_outputs(producer, keep_t))
    for name in chain.norms:
        _replace(model, name, _batchnorm(modules[name], keep_t))
    consumer = modules[chain.consumer]
    weight = torch.from_numpy(np.ascontiguousarray(consumer_weights[:-1].T)).float()
    bias = torch.from_numpy(np.ascontiguousarray(consumer_weights[-1])).float()
    if isinstance(consumer, nn.Linear):
        new = nn.Linear(weight.shape[1], consumer.out_features, bias=True)
    else:
        new = nn.Conv2d(len(keep), consumer.out_channels, consumer.kernel_size,
                        stride=consumer.stride, padding=consumer.padding,
                        dilation=consumer.dilation, bias=True, padding_mode=consumer.padding_mode)
    with torch.no_grad():
        new.weight.copy_(weight.reshape(new.weight.shape))
        new.bias.copy_(bias)
    _replace(model, chain.consumer, new)


def _conv_outputs(conv, keep):
    new = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=1,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[keep])
    return new


def _batchnorm(norm, keep):
    new = nn.BatchNorm2d(len(keep), eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                         track_running_stats=norm.track_running_stats)
    with torch.no_grad():
        if norm.affine:
            new.weight.copy_(norm.weight[keep])
            new.bias.copy_(norm.bias[keep])
        if norm.track_running_stats:
            new.running_mean.copy_(norm.running_mean[keep])
            new.running_var.copy_(norm.running_var[keep])
            new.num_batches_tracked.copy_(norm.num_batches_tracked)
    return new


def _replace(model, name, module):
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


def channel_counts(model, chains):
    """``{producer name: output channels}`` of the chains' producers."""
    modules = dict(model.named_modules())
    return {chain.producer: modules[chain.producer].out_channels for chain in chains}


def min_channels(channels, fraction, multiple=1):
    """Fewest channels a layer of ``channels`` may keep: ``fraction`` of them, rounded up to a
    multiple of ``multiple`` (never more than it has)."""
    count = max(1, int(math.ceil(fraction * channels)))
    return min(channels, -(-count // multiple) * multiple)


def following_norms(model):
    """``{layer name: BatchNorm2d name}`` for each Conv2d whose only user is a BatchNorm2d ({} when
    torch.fx cannot trace the model)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - then refitted layers without a bias get one
        return {}
    modules = dict(model.named_modules())
    out = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), nn.Conv2d):
            users = list(node.users)
            if len(users) == 1 and users[0].op == "call_module" and isinstance(
                    modules.get(users[0].target), nn.BatchNorm2d):
                out[node.target] = users[0].target
    return out
