"""Extra architectures of the recipes (besides :mod:`export.models`).

- ``flat_cnn``: two strided 3x3 convolutions and a linear layer over the *flattened* map. Unlike
  the global-average-pooled families of :mod:`export.models` it keeps where a stroke is, which
  makes it far more accurate on digits for about the same cost: a cheap first model of a pair;
- ``flat_resnet``: two strided stages with a residual block each, flattened into a linear layer
  (the shape of CBNet's converter encoder): on digits-hard about 3 points below the baseline at
  about 1/14 of its time on ONNX Runtime;
- ``mid_resnet``: the large baseline's shape (:class:`export.models.ResNetish`) at a quarter of
  its width (1/16 of its multiply-accumulates, about 1/5 of its time): a mid-priced member;
- ``half_resnet``: the large baseline's shape at half its width (1/4 of its multiply-accumulates,
  about 0.3 of its time): not in the default pool; on digits-hard it stays about half a point to
  a point below ``large_cnn``, so as the second model of a pair it rarely reaches the baseline;
- ``light_cnn``: ``flat_cnn`` at half width, CBNet's lightweight classifier;
- :class:`ConvertingAutoencoder`: CBNet's converter (see :mod:`export.recipes.cbnet`).

Factories take ``in_channels`` and ``num_classes`` like :mod:`export.models`, and ``input_hw``
(the image size, default 16x16 as digits16 / digits-hard): the flattening models size their linear
layer for it, so ``toolkit export export.recipes.pool_models:flat_cnn --weights flat_cnn.pt`` works
for 16x16 models as it is (wrap the factory for other sizes).
"""
from torch import nn

from basics.errors import InputError
from export.models import ResidualBlock, ResNetish, conv_bn


class FlatCNN(nn.Module):
    """Strided 3x3 conv stages, then one linear layer over the flattened feature map."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32), dropout=0.1,
                 input_hw=(16, 16)):
        super().__init__()
        height, width = _hw(input_hw)
        layers, cin = [], in_channels
        for channels in widths:
            layers.append(conv_bn(cin, channels, stride=2))
            cin = channels
            height, width = (height + 1) // 2, (width + 1) // 2
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin * height * width, num_classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class FlatResNet(nn.Module):
    """Two stride-2 stages, each a 3x3 conv and a residual block, then one linear layer over the
    flattened quarter-size map (the converting autoencoder's encoder, as a classifier)."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 48), dropout=0.1,
                 input_hw=(16, 16)):
        super().__init__()
        height, width = _hw(input_hw)
        first, second = widths
        self.features = nn.Sequential(
            conv_bn(in_channels, first, stride=2), ResidualBlock(first),
            conv_bn(first, second, stride=2), ResidualBlock(second))
        height, width = (((height + 1) // 2) + 1) // 2, (((width + 1) // 2) + 1) // 2
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(second * height * width, num_classes)

    def forward(self, x):
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class _ToMap(nn.Module):
    """(N, C*H*W) -> (N, C, H, W) as one Reshape with a constant shape (ONNX shape inference, and
    so TensorRT and the energy model, can follow it; ``nn.Unflatten`` exports a Shape/Concat
    chain)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x):
        return x.reshape((-1,) + self.shape)


class ConvertingAutoencoder(nn.Module):
    """Image -> image of the same shape, values in [0, 1] (sigmoid).

    Encoder: two stride-2 stages (3x3 conv, BN, ReLU, ``blocks`` residual blocks each), then a
    linear bottleneck of ``latent`` values (global: the whole image decides what comes out).
    Decoder: linear back to the quarter-size map, two 2x2 stride-2 transposed convolutions.
    ``input_hw`` must be divisible by 4.
    """

    def __init__(self, in_channels=1, input_hw=(16, 16), widths=(16, 48), latent=64, blocks=1):
        super().__init__()
        height, width = _hw(input_hw)
        if height % 4 or width % 4 or height < 4 or width < 4:
            raise InputError("the converting autoencoder needs image sides divisible by 4, got "
                             "{}x{}".format(height, width))
        first, second = widths
        self.map_shape = (second, height // 4, width // 4)
        flat = second * (height // 4) * (width // 4)
        self.encoder = nn.Sequential(
            conv_bn(in_channels, first, stride=2), *[ResidualBlock(first) for _ in range(blocks)],
            conv_bn(first, second, stride=2), *[ResidualBlock(second) for _ in range(blocks)],
            nn.Flatten(), nn.Linear(flat, latent), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(
            nn.Linear(latent, flat), nn.ReLU(inplace=True), _ToMap(self.map_shape),
            nn.ConvTranspose2d(second, first, 2, stride=2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(first, in_channels, 2, stride=2), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def _hw(input_hw):
    if isinstance(input_hw, int):
        input_hw = (input_hw, input_hw)
    height, width = (int(d) for d in input_hw)
    if height < 1 or width < 1:
        raise InputError("image size must be positive, got {}x{}".format(height, width))
    return height, width


def flat_cnn(in_channels=1, num_classes=10, input_hw=(16, 16)):
    """About 10k parameters on 16x16 input: cheap, and accurate for its cost."""
    return FlatCNN(in_channels, num_classes, widths=(16, 32), input_hw=input_hw)


def flat_resnet(in_channels=1, num_classes=10, input_hw=(16, 16)):
    """About 61k parameters on 16x16 input, about 1/15 of ``large_cnn``'s multiply-accumulates."""
    return FlatResNet(in_channels, num_classes, input_hw=input_hw)


def light_cnn(in_channels=1, num_classes=10, input_hw=(16, 16)):
    """CBNet's lightweight classifier (``flat_cnn`` at half width)."""
    return FlatCNN(in_channels, num_classes, widths=(8, 16), dropout=0.0, input_hw=input_hw)


def mid_resnet(in_channels=1, num_classes=10, input_hw=None):
    """``large_cnn``'s shape at a quarter of its width (about 30k parameters); any image size
    (global average pooling; ``input_hw`` is accepted and ignored)."""
    return ResNetish(in_channels, num_classes, widths=(8, 16, 32))


def half_resnet(in_channels=1, num_classes=10, input_hw=None):
    """``large_cnn``'s shape at half its width (about 120k parameters, 1/4 of its
    multiply-accumulates); any image size (``input_hw`` is accepted and ignored)."""
    return ResNetish(in_channels, num_classes, widths=(16, 32, 64))


def converting_autoencoder(in_channels=1, input_hw=(16, 16), widths=(16, 48), latent=64, blocks=1):
    """CBNet's converter for ``input_hw`` images (the defaults are ``toolkit train cbnet``'s)."""
    return ConvertingAutoencoder(in_channels, input_hw, widths, latent, blocks)


FACTORIES = {"flat_cnn": flat_cnn, "flat_resnet": flat_resnet, "light_cnn": light_cnn,
             "mid_resnet": mid_resnet, "half_resnet": half_resnet}
