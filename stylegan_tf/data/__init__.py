"""Datasets: the official TFRecord layout, dataset_tool's work, the demo faces and the tf.data reader.

Names are imported lazily: worker processes import the TensorFlow-free modules of this package
(images, pyramid, demo_faces) and must not pay for, or be broken by, importing TensorFlow.
"""
import importlib

_EXPORTS = {
    "open_dataset": "reader", "DatasetInfo": "reader",
    "DatasetError": "records", "DatasetWriter": "tfrecords", "verify_level": "tfrecords",
    "build_pyramid": "pyramid",
    "create_from_images": "create",
    "create_demo": "demo_faces",
    "SubsetView": "subset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
