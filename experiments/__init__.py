"""Thin absl entry points: parse flags, call library functions that take plain values."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) drowns the progress output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
