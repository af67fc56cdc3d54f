"""Keras models -> TFLite bundles: streaming step models, calibration, formats.

TensorFlow is imported inside functions; the conversion itself runs in a worker
subprocess (:mod:`converters.isolate`) so a converter crash is reported, not fatal.
"""
