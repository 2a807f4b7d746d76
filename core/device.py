"""Which device TensorFlow computes on, in words for the user."""

from __future__ import annotations


def tensorflow_device() -> str:
    """ "GPU: <name>" when TensorFlow sees one, else "CPU (...)". Imports TensorFlow."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
            name = details.get("device_name", gpus[0].name)
        except (ValueError, RuntimeError):
            name = gpus[0].name
        return f"GPU: {name}" + (f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else "")
    return "CPU (TensorFlow sees no GPU)"
