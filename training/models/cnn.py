"""Image classifiers for edge boards, and the per-frame feature extractors they share.

Two backbones:

* ``separable`` — a stride-2 stem conv then depthwise-separable blocks
  (depthwise 3×3 + pointwise 1×1), each BatchNorm + ReLU6; a block halves the
  resolution while the map is at least 8 px; channel counts scale with the
  width multiplier ``alpha`` (MobileNet-style, rounded to multiples of 8).
* ``mobilenet_v3_small`` — ``keras.applications.MobileNetV3Small`` with
  ``weights=None`` (trained from scratch, nothing downloaded), ``include_top=False``
  and ``include_preprocessing=False``: the model takes the same float frames as
  every other model here, RGB scaled to [0, 1] by the dataset's
  ``preprocessing.scale`` (1/255); there is no Rescaling layer inside.
  ``minimalistic=True`` swaps hard-swish/SE blocks for plain ReLU convs, which
  quantizes more easily. Inputs must be at least 32×32.
* ``mobilenet_v1`` / ``mobilenet_v2`` — ``keras.applications.MobileNet`` /
  ``MobileNetV2`` on the same terms (``alpha`` is their width multiplier). Their
  plain ReLU6 convolutions are what int8 kernels are fastest at.

Every ``keras.applications`` backbone gets BatchNorm momentum 0.9: their 0.99/0.999
is tuned for ImageNet-length runs, and on a small dataset the moving statistics
never settle and inference collapses to one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import HybridEdgeError
from training.registry import register_model

BACKBONES = ("separable", "mobilenet_v3_small", "mobilenet_v1", "mobilenet_v2")


def _round8(channels: float) -> int:
    return max(8, int(channels + 4) // 8 * 8)


def backbone_features(
    x: Any,
    backbone: str,
    alpha: float = 1.0,
    stem: int = 16,
    filters: tuple[int, ...] = (32, 64, 128, 128),
    minimalistic: bool = False,
) -> Any:
    """Apply a backbone to an image tensor ``x`` (B, H, W, C); return its feature map.

    Raises:
        HybridEdgeError: unknown backbone or an input too small for it.
    """
    import keras
    from keras import layers

    if backbone == "separable":
        # momentum 0.9: the moving statistics settle within a few epochs of a small dataset
        x = layers.Conv2D(_round8(stem * alpha), 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
        x = layers.ReLU(6.0, name="stem_relu")(x)
        for i, f in enumerate(filters):
            # halve the resolution only while the map is at least 8 px: small inputs keep a 4x4 map
            stride = 2 if min(int(x.shape[1]), int(x.shape[2])) >= 8 else 1
            x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw_{i}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"dw_{i}_bn")(x)
            x = layers.ReLU(6.0, name=f"dw_{i}_relu")(x)
            x = layers.Conv2D(_round8(f * alpha), 1, use_bias=False, name=f"pw_{i}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"pw_{i}_bn")(x)
            x = layers.ReLU(6.0, name=f"pw_{i}_relu")(x)
        return x
    if backbone in ("mobilenet_v3_small", "mobilenet_v1", "mobilenet_v2"):
        h, w, c = (int(d) for d in x.shape[1:])
        if min(h, w) < 32:
            raise HybridEdgeError(f"backbone {backbone} needs inputs of at least 32x32, got {h}x{w}")
        common = dict(input_shape=(h, w, c), alpha=alpha, include_top=False, weights=None, name=backbone)
        if backbone == "mobilenet_v3_small":
            net = keras.applications.MobileNetV3Small(minimalistic=minimalistic, include_preprocessing=False, **common)
        elif backbone == "mobilenet_v1":
            net = keras.applications.MobileNet(**common)
        else:
            net = keras.applications.MobileNetV2(**common)
        for layer in net.layers:  # see the module docstring
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        return net(x)
    raise HybridEdgeError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


@dataclass(frozen=True)
class CnnConfig:
    """Image classifier: separable-conv or MobileNetV3-Small backbone, width multiplier ``alpha``, input size."""

    height: int = 96
    width: int = 96
    channels: int = 3
    num_classes: int = 10
    backbone: str = "separable"
    alpha: float = 1.0
    stem: int = 16
    filters: tuple[int, ...] = (32, 64, 128, 256)
    minimalistic: bool = False
    dropout: float = 0.2


def build_cnn(cfg: CnnConfig) -> Any:
    """``image`` (H, W, C) float -> ``frame_encoder`` (backbone + global pooling) -> Dropout -> ``classifier``."""
    import keras
    from keras import layers

    image = keras.Input((cfg.height, cfg.width, cfg.channels), name="frame")
    features = backbone_features(image, cfg.backbone, cfg.alpha, cfg.stem, cfg.filters, cfg.minimalistic)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    encoder = keras.Model(image, pooled, name="frame_encoder")

    inp = keras.Input((cfg.height, cfg.width, cfg.channels), name="image")
    x = encoder(inp)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
    out = layers.Dense(cfg.num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name=f"cnn_{cfg.backbone}")


@register_model("cnn", CnnConfig, "image", streamable=False)
def cnn(cfg: CnnConfig) -> Any:
    return build_cnn(cfg)


@dataclass(frozen=True)
class TinyCnnConfig(CnnConfig):
    """Seconds-to-train variant for tests."""

    height: int = 32
    width: int = 32
    num_classes: int = 4
    alpha: float = 0.25
    filters: tuple[int, ...] = (16, 32)


@register_model("test_cnn", TinyCnnConfig, "image", streamable=False)
def test_cnn(cfg: TinyCnnConfig) -> Any:
    return build_cnn(cfg)
