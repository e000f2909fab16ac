"""stylegan_tf: NVIDIA's StyleGAN (2019) pipeline on TensorFlow 2 / Keras 3.

Public entry points are imported lazily so that `import stylegan_tf` stays cheap for the
command-line tools that only need the dataset code.
"""
__version__ = "0.1.0"


def load_network(path, **kwargs):
    """Load our `.keras` snapshot or an official StyleGAN `.pkl`; returns an object with .G, .D, .Gs."""
    from stylegan_tf.network_io import load_network as _load
    return _load(path, **kwargs)
