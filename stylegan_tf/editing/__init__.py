"""Editing generated and real faces along attributes (the "make this face smile" workflow).

1. `labeler`: a small Keras image classifier/regressor that reads attributes from images, trained on a
   dataset's reals and their attribute columns (the demo faces' 15 attributes, subfolder classes, or a CSV).
2. `directions`: labels generated images with it and fits, per attribute, the two-layer non-linear predictor
   w -> attribute of the "StyleGAN to generate anything" project and a linear (least-squares normal,
   InterFaceGAN-style) direction.
3. `edit`: moves w linearly (w + a*n) or by gradient descent in W on the two-layer predictor, on the layers
   chosen (coarse / middle / fine / all).
4. `projection`: finds the w (W or W+) and noise maps that reproduce a real photo, as NVIDIA's StyleGAN2
   projector does (`lpips`: its LPIPS distance from user-supplied weights).

Five lines of Python (see docs/editing.md):

    from stylegan_tf import editing
    editing.train_labeler("datasets/demo", ["smile", "yaw"], resolution=32, out="labeler.keras")
    dirs = editing.fit_directions("net.keras", "labeler.keras", ["smile", "yaw"], samples=2000)
    p = editing.project("net.keras", "photo.png", out_dir="proj")
    grid = editing.edit("net.keras", dirs, "smile", amounts=[-2, 0, 2], w=p.w, noise=p.noise).grid

Names are imported lazily so that `generate.py --help` does not load Keras.
"""
import importlib

_EXPORTS = {
    "Labeler": "labeler", "train_labeler": "labeler", "load_labeler": "labeler", "read_user_labels": "labeler",
    "Directions": "directions", "fit_directions": "directions", "load_directions": "directions",
    "network_fingerprint": "latents", "sample_w": "latents",
    "edit": "edits", "edit_w": "edits", "EditResult": "edits",
    "project": "projection", "Projection": "projection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
