"""Small CNN families for the bundled digits data (and any small grayscale/RGB classification).

Each factory takes ``in_channels``, ``num_classes`` and returns an ``nn.Module`` whose forward maps
(N, C, H, W) float32 to logits (N, classes); all use global average pooling so they accept any
spatial size. ``toolkit export`` can name them as ``export.models:tiny_cnn``.
"""
import torch
from torch import nn


def conv_bn(cin, cout, stride=1, groups=1, kernel=3):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SimpleCNN(nn.Module):
    """Plain conv stack: ``widths`` channels per stage, stride 2 from the second stage on."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32)):
        super().__init__()
        layers, cin = [], in_channels
        for i, width in enumerate(widths):
            layers.append(conv_bn(cin, width, stride=1 if i == 0 else 2))
            cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(x + self.body(x))


class ResNetish(nn.Module):
    """Stem, residual blocks per stage, max pooling between stages: the large baseline."""

    def __init__(self, in_channels=1, num_classes=10, widths=(32, 64, 128), blocks=1):
        super().__init__()
        stages, cin = [conv_bn(in_channels, widths[0])], widths[0]
        for i, width in enumerate(widths):
            if i:
                stages += [nn.MaxPool2d(2), conv_bn(cin, width)]
            stages += [ResidualBlock(width) for _ in range(blocks)]
            cin = width
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class DepthwiseCNN(nn.Module):
    """MobileNet-style depthwise-separable blocks."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        layers, cin = [conv_bn(in_channels, widths[0])], widths[0]
        for width in widths[1:]:
            layers += [conv_bn(cin, cin, stride=2, groups=cin), conv_bn(cin, width, kernel=1)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def tiny_cnn(in_channels=1, num_classes=10):
    """About 5k parameters: the cheapest pool member."""
    return SimpleCNN(in_channels, num_classes, widths=(8, 16))


def small_cnn(in_channels=1, num_classes=10):
    """The demo's default model."""
    return SimpleCNN(in_channels, num_classes, widths=(16, 32))


def depthwise_cnn(in_channels=1, num_classes=10):
    return DepthwiseCNN(in_channels, num_classes)


def large_cnn(in_channels=1, num_classes=10):
    """The large baseline (residual, about 0.5M parameters)."""
    return ResNetish(in_channels, num_classes)


FACTORIES = {"tiny_cnn": tiny_cnn, "small_cnn": small_cnn, "depthwise_cnn": depthwise_cnn,
             "large_cnn": large_cnn}
