"""See and steer a trained generator in the browser: seeds, truncation, style mixing, walks, attribute sliders,
your photo and your camera (docs/explore.md).

    python generate.py explore --network net.keras --directions dirs.npz --labeler labeler.keras

or in a notebook cell:

    from stylegan_tf.explore import build_app
    build_app("net.keras").launch()      # shows the app inline in Colab and Jupyter

Gradio is an optional extra: `pip install -e ".[app]"`. Names are imported lazily, so that importing this
package (and `generate.py --help`) loads neither Gradio nor Keras.
"""
import importlib

_EXPORTS = {"build_app": "app", "Explorer": "engine", "ExploreError": "engine", "explore": "command",
            "newest_snapshot": "command"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
