"""The one Keras registration package of this project's layers and networks.

A `.keras` file names each class as `stylegan_tf>ClassName`, so the package string is part of the file format:
every registered class uses `register` (or `PACKAGE`) and nothing spells the string again.
"""
import keras

PACKAGE = "stylegan_tf"


def register(cls):
    """Class decorator: make `cls` loadable from `.keras` files under `stylegan_tf>{cls.__name__}`."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
