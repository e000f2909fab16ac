"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), the VGG16
variant NVIDIA's projector uses, built from user-supplied weights read without PyTorch and without running code
from the files (`stylegan_tf.metrics.torch_pth`'s restricted reader).

Weights: torchvision's VGG16 state dict (`vgg16-397923af.pth`: keys `features.N.weight/bias`) plus the LPIPS
linear layers (the `lpips` package's `weights/v0.1/vgg.pth`: keys `lin0.model.1.weight` ... `lin4...`), given as
two files or one; a whole `lpips.LPIPS` state dict (`net.sliceK.N.weight`, `lin*`) works as well. Without the
linear layers every channel weighs the same (LPIPS's "baseline" variant).

distance(x, y) = sum over the five VGG16 stages (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of the spatial mean
of sum_c w_c (f_x - f_y)^2, with f unit-normalised over channels and inputs scaled by LPIPS's shift/scale.
"""
import os
import re

import numpy as np

from stylegan_tf.editing.errors import EditError

# torchvision VGG16 `features` indices of the convolutions, grouped by the stage whose last ReLU LPIPS reads.
STAGES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)


def _read(paths):
    from stylegan_tf.metrics.torch_pth import load_state_dict
    merged = {}
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise EditError(f"--lpips: {path} does not exist")
        try:
            state = load_state_dict(path)
        except Exception as exc:  # noqa: BLE001 - refused pickles and foreign files both mean: not usable here
            raise EditError(f"--lpips: {path} is not a readable PyTorch state dict "
                            f"({' '.join(str(exc).split())[:160]})") from None
        for key, value in state.items():
            key = re.sub(r"^net\.slice\d+\.", "features.", str(key))
            key = re.sub(r"^(module\.|features\.features\.)", "features.", key)
            merged[key] = np.asarray(value, np.float32)
    return merged


class LPIPS:
    """LPIPS distance from VGG16 (+ linear layer) weights.

    Example:
        lp = LPIPS.from_files(["vgg16-397923af.pth", "vgg.pth"])
        d = lp.distance(images_a, images_b)   # NHWC in [-1, 1] -> [N]
    """

    def __init__(self, state, source="weights"):
        convs = {}
        for stage in STAGES:
            for idx in stage:
                w, b = state.get(f"features.{idx}.weight"), state.get(f"features.{idx}.bias")
                if w is None or b is None or w.ndim != 4:
                    raise EditError(f"--lpips: {source} has no VGG16 layer features.{idx} (give torchvision's "
                                    "vgg16 .pth, and LPIPS's vgg.pth for the linear layers)")
                convs[idx] = (np.transpose(w, (2, 3, 1, 0)), b)  # torch OIHW -> HWIO
        self.convs = convs
        self.lins = []
        for s, stage in enumerate(STAGES):
            channels = convs[stage[-1]][0].shape[3]
            lin = state.get(f"lin{s}.model.1.weight")
            if lin is None:
                lin = state.get(f"lin{s}.model.0.weight")
            self.lins.append(np.ones(channels, np.float32) if lin is None else lin.reshape(-1).astype(np.float32))
            if self.lins[-1].shape != (channels,):
                raise EditError(f"--lpips: lin{s} has {self.lins[-1].size} weights, the VGG stage {channels} channels")
        self.calibrated = all(f"lin{s}.model.1.weight" in state or f"lin{s}.model.0.weight" in state
                              for s in range(5))

    @classmethod
    def from_files(cls, paths):
        """One path, a list of paths, or 'a.pth,b.pth'."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [p for p in str(paths).split(",") if p]
        return cls(_read(paths), source=", ".join(map(os.fspath, paths)))

    def features(self, images):
        """Unit-normalised features of the five stages for NHWC images in [-1, 1] (TF ops: differentiable)."""
        import tensorflow as tf
        x = tf.convert_to_tensor(images, tf.float32)
        if x.shape[-1] == 1:
            x = tf.tile(x, [1, 1, 1, 3])
        x = (x - SHIFT) / SCALE
        out = []
        for s, stage in enumerate(STAGES):
            if s:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for idx in stage:
                w, b = self.convs[idx]
                x = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b)
            out.append(x / (tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)) + 1e-10))
        return out

    def distance(self, a, b, b_features=None):
        """[N] LPIPS distances; `b_features` (from `features(b)`) saves recomputing a fixed target."""
        import tensorflow as tf
        fb = self.features(b) if b_features is None else b_features
        total = 0.0
        for fa, fb_, lin in zip(self.features(a), fb, self.lins):
            total += tf.reduce_mean(tf.reduce_sum(tf.square(fa - fb_) * lin, axis=-1), axis=[1, 2])
        return total
