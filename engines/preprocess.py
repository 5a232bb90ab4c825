"""What a model expects of its input images: size, channel order, scale, per-channel mean/std.

:class:`Preprocessing` turns raw images into the model's float32 NCHW input, the same way on the
host (export parity, calibration) and on the device (``toolkit run``). It is stored in the model's
metadata sidecar (``engines.model_metadata``), so a deployed engine knows how to feed itself.

Steps of :meth:`Preprocessing.apply`, in order:

1. uint8 images (N, H, W, C), (N, H, W) or (N, C, H, W) become float32 NCHW times ``scale``
   (default 1/255); float images must be NCHW (or N, H, W) and are taken as they are (usually [0, 1]);
2. bilinear resize to ``resize_hw`` (half-pixel centres, like OpenCV's INTER_LINEAR);
3. channel order: the input is RGB (or grayscale); ``"BGR"`` reverses the channels, ``"L"`` makes
   one luma channel (ITU-R 601), ``"RGB"``/``"BGR"`` repeat a grayscale channel three times;
   ``None`` keeps the channels as they are;
4. ``(x - mean) / std`` per channel (one value broadcasts to every channel).
"""
import numpy as np

from basics.errors import InputError

CHANNEL_ORDERS = ("RGB", "BGR", "L")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class Preprocessing(object):
    """Resize, channel order, uint8 scale and per-channel normalization of a model's input.

    ``resize_hw``: ``(height, width)`` or None (no resize); ``mean``/``std``: one value or one per
    channel, or None (no normalization); ``channel_order``: ``"RGB"``, ``"BGR"``, ``"L"`` (grayscale)
    or None (keep the input's channels); ``scale``: factor for uint8 input (1/255: bytes to [0, 1]).
    """

    def __init__(self, resize_hw=None, mean=None, std=None, channel_order=None, scale=1.0 / 255.0):
        self.resize_hw = _parse_hw(resize_hw)
        self.mean = _parse_floats(mean, "mean")
        self.std = _parse_floats(std, "std")
        if self.std is not None and any(not s > 0 for s in self.std):
            raise InputError("std values must be positive, got {}".format(list(self.std)))
        if self.mean is not None and self.std is not None and 1 not in (len(self.mean), len(self.std)) \
                and len(self.mean) != len(self.std):
            raise InputError("mean has {} values but std has {}".format(len(self.mean), len(self.std)))
        if channel_order is not None:
            channel_order = str(channel_order).upper()
            if channel_order not in CHANNEL_ORDERS:
                raise InputError("channel order must be one of {}, got '{}'".format(
                    ", ".join(CHANNEL_ORDERS), channel_order))
        self.channel_order = channel_order
        try:
            self.scale = float(scale)
        except (TypeError, ValueError):
            raise InputError("scale must be a number, got {!r}".format(scale)) from None
        if not self.scale > 0:
            raise InputError("scale must be positive, got {}".format(self.scale))

    @property
    def channels(self):
        """Channels of the output (1 for ``"L"``, 3 for RGB/BGR), or None when kept as given."""
        if self.channel_order is None:
            return None
        return 1 if self.channel_order == "L" else 3

    @property
    def is_identity(self):
        """True when float NCHW input passes through unchanged."""
        return self.resize_hw is None and self.mean is None and self.std is None \
            and self.channel_order is None

    def check_input_shape(self, shape_nchw):
        """InputError unless this preprocessing can produce a model input of ``shape_nchw``."""
        channels, height, width = tuple(shape_nchw)[-3:]
        if self.channels is not None and self.channels != channels:
            raise InputError("channel order {} gives {} channel(s) but the model input has {}".format(
                self.channel_order, self.channels, channels))
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) not in (1, channels):
                raise InputError("{} has {} values; the model input has {} channel(s)".format(
                    name, len(values), channels))
        if self.resize_hw is not None and self.resize_hw != (height, width):
            raise InputError("resize {}x{} does not match the model input {}x{}".format(
                self.resize_hw[0], self.resize_hw[1], height, width))

    def apply(self, images, input_order="RGB"):
        """Raw images -> float32 NCHW model input (a new array).

        ``images``: uint8 (N, H, W, C) / (N, H, W) / (N, C, H, W), or float NCHW / (N, H, W);
        ``input_order``: the channel order of 3-channel input, ``"RGB"`` or ``"BGR"`` (OpenCV).
        """
        x = to_nchw_float(images, self.scale)
        if str(input_order).upper() == "BGR" and x.shape[1] == 3:
            x = x[:, ::-1]
        elif str(input_order).upper() not in ("RGB", "BGR"):
            raise InputError("input order must be RGB or BGR, got '{}'".format(input_order))
        if self.resize_hw is not None and tuple(x.shape[2:]) != self.resize_hw:
            x = resize_bilinear(x, self.resize_hw)
        x = _convert_channels(x, self.channel_order)
        if self.mean is not None:
            x = x - _per_channel(self.mean, x.shape[1], "mean")
        if self.std is not None:
            x = x / _per_channel(self.std, x.shape[1], "std")
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_dict(self):
        return {"resize_hw": None if self.resize_hw is None else list(self.resize_hw),
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std),
                "channel_order": self.channel_order, "scale": self.scale}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict` (None or {} give the identity); InputError on bad content."""
        data = data or {}
        if not isinstance(data, dict):
            raise InputError("preprocessing must be a mapping, got {}".format(type(data).__name__))
        unknown = sorted(set(data) - {"resize_hw", "mean", "std", "channel_order", "scale"})
        if unknown:
            raise InputError("unknown preprocessing field(s): {}".format(", ".join(unknown)))
        return cls(resize_hw=data.get("resize_hw"), mean=data.get("mean"), std=data.get("std"),
                   channel_order=data.get("channel_order"), scale=data.get("scale", 1.0 / 255.0))

    def __eq__(self, other):
        return isinstance(other, Preprocessing) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "Preprocessing({})".format(", ".join(
            "{}={!r}".format(k, v) for k, v in sorted(self.to_dict().items())))


def to_nchw_float(images, scale=1.0 / 255.0):
    """uint8 NHWC / NHW / NCHW or float NCHW / NHW -> float32 NCHW (uint8 times ``scale``)."""
    array = np.asarray(images)
    if array.ndim == 3:  # grayscale (N, H, W)
        array = array[..., None] if array.dtype == np.uint8 else array[:, None]
    if array.ndim != 4:
        raise InputError("images must be a batch (N, H, W[, C]) or (N, C, H, W), got shape {}".format(
            array.shape))
    if array.dtype == np.uint8:
        last_is_channel = array.shape[-1] in (1, 3, 4)
        if last_is_channel:  # NHWC, the layout of decoded images (ambiguous shapes count as NHWC)
            array = array.transpose(0, 3, 1, 2)
        elif array.shape[1] not in (1, 3, 4):
            raise InputError("uint8 images must be (N, H, W, C) or (N, C, H, W) with 1, 3 or 4 "
                             "channels, got shape {}".format(array.shape))
        if array.shape[1] == 4:
            array = array[:, :3]  # drop alpha
        return array.astype(np.float32) * np.float32(scale)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError("images must be uint8 or float, got {}".format(array.dtype))
    if array.shape[1] not in (1, 3):
        raise InputError("float images must be NCHW with 1 or 3 channels, got shape {}".format(
            array.shape))
    return array.astype(np.float32)


def resize_bilinear(images, size_hw):
    """Bilinear resize of float NCHW ``images`` to ``size_hw`` (half-pixel centres, edge clamp)."""
    out_h, out_w = size_hw
    in_h, in_w = images.shape[2], images.shape[3]
    y0, y1, wy = _axis_weights(in_h, out_h)
    x0, x1, wx = _axis_weights(in_w, out_w)
    rows = images[:, :, y0] * (1 - wy)[:, None] + images[:, :, y1] * wy[:, None]
    out = rows[:, :, :, x0] * (1 - wx) + rows[:, :, :, x1] * wx
    return out.astype(np.float32)


def _axis_weights(size_in, size_out):
    centres = (np.arange(size_out, dtype=np.float64) + 0.5) * (float(size_in) / size_out) - 0.5
    centres = np.clip(centres, 0.0, size_in - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (centres - low).astype(np.float32)


def _convert_channels(x, order):
    channels = x.shape[1]
    if order is None:
        return x
    if order == "L":
        if channels == 3:
            return np.tensordot(x, _LUMA, axes=([1], [0]))[:, None].astype(np.float32)
        return x
    if channels == 1:
        x = np.repeat(x, 3, axis=1)
    return x[:, ::-1] if order == "BGR" else x


def _per_channel(values, channels, name):
    if len(values) not in (1, channels):
        raise InputError("{} has {} values but the images have {} channel(s)".format(
            name, len(values), channels))
    return np.asarray(values, dtype=np.float32).reshape(1, -1, 1, 1)


def _parse_floats(value, name):
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part]
    elif np.isscalar(value):
        value = [value]
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError("{} must be numbers separated by commas, got {!r}".format(name, value)) from None
    if not values or not all(np.isfinite(values)):
        raise InputError("{} must be one or more finite numbers, got {!r}".format(name, value))
    return values


def _parse_hw(value):
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
    elif np.isscalar(value):
        parts = [value, value]
    else:
        parts = list(value)
    try:
        dims = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) != 2 or any(d < 1 for d in dims):
        raise InputError("resize must look like HxW (e.g. 224x224), got {!r}".format(value))
    return dims
