"""Keras training code for CNN, RNN and CNN+RNN models.

``training.data`` is numpy/OpenCV only (the edge runtime may read datasets
through it); TensorFlow is imported inside the functions that need it.
"""
