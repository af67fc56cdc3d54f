"""CNN+RNN video models: a per-frame CNN (TimeDistributed, all frames in one batch) feeding LSTM/GRU layers.

Layer names are part of the contract with :mod:`converters.streaming`: the
per-frame encoder is the sub-model ``frame_encoder``, recurrent layers are
``rnn_0``, ``rnn_1``…, the classifier is ``classifier``.

Encoder backbones: ``custom`` (strided 3×3 convs, Flatten: it keeps spatial
layout, because where the shape *is* in each frame is what tells motion
apart), or either image backbone of :mod:`training.models.cnn` (``separable``,
``mobilenet_v3_small``) followed by global average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import HybridEdgeError
from training.models.cnn import BACKBONES, backbone_features
from training.registry import FitDefaults, register_model

# A camera never resets the recurrent state: after the clip fit, fine-tune on carried-state
# clip streams (training.streamfit), or the state drifts and predictions stick on a stream.
# Both phases decay the learning rate to 0 (cosine); on the quickstart's data (8 classes, 400
# clips each, seed 0) 20 + 8 epochs this way reach test accuracy 0.902 and no-reset per-step
# accuracy 0.506, where 40 constant-rate epochs (early stopping) + 10 stream epochs gave 0.884 / 0.513.
_STREAM_FIT = FitDefaults(epochs=20, batch_size=16, learning_rate=2e-3, patience=20, schedule="cosine",
                          stream_epochs=8, stream_learning_rate=2e-3)


@dataclass(frozen=True)
class CnnRnnConfig:
    """Video clips: per-frame CNN (custom / separable / mobilenet_v3_small) -> LSTM/GRU -> softmax."""

    frames: int = 16
    height: int = 48
    width: int = 48
    channels: int = 3
    num_classes: int = 8
    filters: tuple[int, ...] = (16, 32, 32)
    embed: int = 64
    units: tuple[int, ...] = (48,)
    cell: str = "lstm"
    dropout: float = 0.3
    batch_norm: bool = False
    backbone: str = "custom"  # or "separable" / "mobilenet_v3_small"
    alpha: float = 1.0  # width multiplier of the image backbones
    minimalistic: bool = False  # mobilenet_v3_small without hard-swish/SE


def build_cnn_rnn(cfg: CnnRnnConfig):
    """TimeDistributed(conv encoder) -> stacked LSTM/GRU -> softmax, on (T, H, W, C) float clips."""
    import keras
    from keras import layers

    enc_in = keras.Input((cfg.height, cfg.width, cfg.channels), name="frame")
    x = enc_in
    if cfg.backbone == "custom":
        for i, f in enumerate(cfg.filters):
            x = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=not cfg.batch_norm, name=f"conv_{i}")(x)
            if cfg.batch_norm:  # folded into the conv by the converter
                x = layers.BatchNormalization(name=f"bn_{i}")(x)
            x = layers.ReLU(name=f"relu_{i}")(x)
        x = layers.Flatten(name="flatten")(x)
    elif cfg.backbone in BACKBONES:
        x = backbone_features(x, cfg.backbone, cfg.alpha, filters=cfg.filters, minimalistic=cfg.minimalistic)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        raise HybridEdgeError(f"unknown backbone {cfg.backbone!r}; choose one of custom, {', '.join(BACKBONES)}")
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="flatten_dropout")(x)
    x = layers.Dense(cfg.embed, activation="relu", name="embed")(x)
    encoder = keras.Model(enc_in, x, name="frame_encoder")

    clip = keras.Input((cfg.frames, cfg.height, cfg.width, cfg.channels), name="clip")
    from training.models.layers import FrameEncoder

    y = FrameEncoder(encoder, name="frame_encoder_td")(clip)
    if cfg.cell not in ("lstm", "gru"):
        raise HybridEdgeError(f"unknown cell {cfg.cell!r}; choose lstm or gru")
    rnn_cls = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        y = rnn_cls(units, return_sequences=not last, name=f"rnn_{i}")(y)
    if cfg.dropout:
        y = layers.Dropout(cfg.dropout, name="dropout")(y)
    out = layers.Dense(cfg.num_classes, activation="softmax", name="classifier")(y)
    return keras.Model(clip, out, name=f"cnn_{cfg.cell}")


@register_model("cnn_lstm", CnnRnnConfig, "clip", fit=_STREAM_FIT)
def cnn_lstm(cfg: CnnRnnConfig):
    return build_cnn_rnn(cfg)


@dataclass(frozen=True)
class CnnGruConfig(CnnRnnConfig):
    """As ``cnn_lstm`` with GRU layers (one state tensor per layer instead of two)."""

    cell: str = "gru"


@register_model("cnn_gru", CnnGruConfig, "clip", fit=_STREAM_FIT)
def cnn_gru(cfg: CnnGruConfig):
    return build_cnn_rnn(cfg)


@dataclass(frozen=True)
class TinyCnnRnnConfig(CnnRnnConfig):
    """Seconds-to-train variant for tests."""

    frames: int = 6
    height: int = 24
    width: int = 24
    num_classes: int = 4
    filters: tuple[int, ...] = (4, 8)
    embed: int = 16
    units: tuple[int, ...] = (8,)


@register_model("test_cnn_lstm", TinyCnnRnnConfig, "clip")
def test_cnn_lstm(cfg: TinyCnnRnnConfig):
    return build_cnn_rnn(cfg)


@dataclass(frozen=True)
class TinyCnnGruConfig(TinyCnnRnnConfig):
    """Tiny GRU variant on the depthwise-separable backbone."""

    cell: str = "gru"
    backbone: str = "separable"
    alpha: float = 0.25
    filters: tuple[int, ...] = (8, 16)


@register_model("test_cnn_gru", TinyCnnGruConfig, "clip")
def test_cnn_gru(cfg: TinyCnnGruConfig):
    return build_cnn_rnn(cfg)


@dataclass(frozen=True)
class TinyCnnMobilenetConfig(TinyCnnRnnConfig):
    """Tiny LSTM variant on a minimalistic MobileNetV3-Small encoder (32×32 frames)."""

    frames: int = 3
    height: int = 32
    width: int = 32
    backbone: str = "mobilenet_v3_small"
    alpha: float = 0.35
    minimalistic: bool = True


@register_model("test_cnn_lstm_mobilenet", TinyCnnMobilenetConfig, "clip")
def test_cnn_lstm_mobilenet(cfg: TinyCnnMobilenetConfig):
    return build_cnn_rnn(cfg)
