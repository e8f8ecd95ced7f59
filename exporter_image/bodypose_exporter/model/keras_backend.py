"""One place that imports Keras 2 (tf_keras) with TensorFlow's logging tamed.

TAO trained BodyPoseNet with Keras 2 on TensorFlow 1; Keras 3 changed HDF5
loading and layer naming, so we use `tf_keras` (Keras 2 API on TensorFlow 2)
everywhere. Importing it through this module keeps the environment tweaks in
one place.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the export stage never needs a GPU

from bodypose_exporter.native_logs import quiet_native_logs

with quiet_native_logs():
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    # Device discovery (cuInit) and the CPU feature guard log on first use: now.
    tf.config.list_physical_devices()
    tf.zeros(1)

__all__ = ["keras", "tf", "tf2onnx"]
