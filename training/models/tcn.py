"""Causal convolutional classifiers for sensor / feature sequences (T, F): the FCN recipe made streamable.

The fully convolutional network of the UCR/UEA baselines (Wang et al. 2017;
Fawaz et al. 2019: three Conv1D + BatchNorm + ReLU blocks, global average
pooling, softmax) with causal convolutions, so that each step needs only the
past, and the pooling kept as a running mean, so that the decision after step t
is the mean of the features of steps 1..t. Layout (a linear chain, see the
streaming contract in :mod:`training.models`)::

    sequence (T, F)        T is None by default: any length, padded batches
    mask                   Masking(0.0): front padding is skipped
    conv_i, bn_i, relu_i   MaskedConv1D(padding="causal", use_bias=False) + BatchNorm + ReLU, i = 0..n-1
    pool                   GlobalAveragePooling1D over the real steps (running mean when streaming)
    dropout                Dropout
    classifier             Dense softmax

Streaming state: a buffer of the last ``(kernel - 1) * dilation`` inputs per
convolution (int8 in an int8 bundle, but for the first convolution's: it holds
raw samples, which an int8 bundle keeps float32 with that convolution, see
``convert --first-layer``), and the running mean with its step count (float32 in
every bundle: see :class:`training.models.layers.RunningMeanStep`).

BatchNorm momentum is 0.9, not Keras's 0.99: a UCR training set of 50 series is
3 batches per epoch, and with 0.99 the moving statistics are still far from the
data's after 100 epochs (the model fits in training mode and is near chance at
inference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import HybridEdgeError
from training.registry import FitDefaults, register_model


@dataclass(frozen=True)
class TcnConfig:
    """Sensor/feature sequences of any length: causal conv blocks -> running mean -> softmax."""

    timesteps: int = 0  # 0: variable length (None)
    features: int = 6
    num_classes: int = 4
    filters: tuple[int, ...] = (64, 64, 64)
    kernels: tuple[int, ...] = (7, 5, 3)
    dilations: tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.2
    bn_momentum: float = 0.9
    noise: float = 0.0  # GaussianNoise stddev on the standardised input while training (augmentation); 0: off


def build_tcn(cfg: TcnConfig) -> Any:
    """Build the chain above."""
    import keras
    from keras import layers

    from training.models.layers import MaskedConv1D

    if not cfg.filters:
        raise HybridEdgeError("tcn needs at least one convolution (filters)")
    if not len(cfg.filters) == len(cfg.kernels) == len(cfg.dilations):
        raise HybridEdgeError(f"tcn: filters, kernels and dilations differ in length ({len(cfg.filters)}, {len(cfg.kernels)}, {len(cfg.dilations)})")
    seq = keras.Input((cfg.timesteps or None, cfg.features), name="sequence")
    x = layers.Masking(0.0, name="mask")(seq)
    if cfg.noise:
        x = layers.GaussianNoise(cfg.noise, name="noise")(x)  # identity at inference; MaskedConv1D re-zeroes padding
    for i, (f, k, d) in enumerate(zip(cfg.filters, cfg.kernels, cfg.dilations)):
        x = MaskedConv1D(f, k, dilation_rate=d, padding="causal", use_bias=False, name=f"conv_{i}")(x)
        x = layers.BatchNormalization(momentum=cfg.bn_momentum, name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
    out = layers.Dense(cfg.num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(seq, out, name="tcn")


# Measured on UCR/UEA sets of 40-300 series: 100 epochs with a cosine decay from 3e-3
# converge; the run keeps the weights of the best validation loss, then recomputes the
# BatchNorm statistics over the whole training set (training.precise_bn).
_FIT = FitDefaults(epochs=100, batch_size=16, learning_rate=3e-3, patience=100, monitor="val_loss", schedule="cosine", precise_bn=True)


@register_model("tcn", TcnConfig, "sequence", fit=_FIT)
def tcn(cfg: TcnConfig) -> Any:
    return build_tcn(cfg)


@dataclass(frozen=True)
class TinyTcnConfig(TcnConfig):
    """Seconds-to-train variant for tests (a dilated second convolution)."""

    features: int = 3
    num_classes: int = 3
    filters: tuple[int, ...] = (8, 8)
    kernels: tuple[int, ...] = (3, 3)
    dilations: tuple[int, ...] = (1, 2)
    dropout: float = 0.0


@register_model("test_tcn", TinyTcnConfig, "sequence", fit=FitDefaults(epochs=30, batch_size=16, learning_rate=1e-2, patience=30, monitor="val_loss", schedule="cosine",
                                                                       precise_bn=True))
def test_tcn(cfg: TinyTcnConfig) -> Any:
    return build_tcn(cfg)
