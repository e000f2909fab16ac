"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), the VGG16
variant (v0.1) that NVIDIA's perceptual path length and projector use, in keras.ops (TensorFlow and JAX).

Weights: torchvision's VGG16 trunk (`vgg16-397923af.pth`: keys `features.N.weight/bias`) plus the LPIPS linear
heads (the `lpips` package's `weights/v0.1/vgg.pth`: keys `lin0.model.1.weight` ... `lin4...`), as two files
or one; a whole `lpips.LPIPS` state dict (`net.sliceK.N.weight`, `lin*`) works as well. All are read without
PyTorch and without running code from the files. Without the heads every channel weighs the same (LPIPS's
"baseline" variant). `load_lpips()` finds the default files (`vgg16.weights_path`).

distance(x, y) = sum over the five VGG16 stages (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of the spatial mean
of sum_c w_c (f_x - f_y)^2, with f unit-normalised over channels and inputs scaled by LPIPS's shift/scale.
"""
import os

import numpy as np
import keras

from stylegan_tf.metrics import vgg16

STAGES = vgg16.STAGES
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)


class LPIPS:
    """LPIPS distance from VGG16 (+ linear heads) weights.

    `error` is the exception class for weights that do not fit (editing raises its own).

    Example:
        lp = LPIPS.from_files(["vgg16-397923af.pth", "vgg.pth"])
        d = lp.distance(images_a, images_b)          # NHWC in [-1, 1] -> [N] (backend tensors, differentiable)
        d = lp.distances(images_a, images_b)         # the same as numpy, compiled, in batches
    """

    error = vgg16.WeightsError
    flag = "--lpips"

    def __init__(self, state, source="weights"):
        self.vgg = vgg16.VGG16(state, source=f"{self.flag}: {source}", error=self.error)
        self.lins = []
        for s, channels in enumerate(self.vgg.stage_channels):
            lin = state.get(f"lin{s}.model.1.weight")
            if lin is None:
                lin = state.get(f"lin{s}.model.0.weight")
            lin = np.ones(channels, np.float32) if lin is None else lin.reshape(-1).astype(np.float32)
            if lin.shape != (channels,):
                raise self.error(f"{self.flag}: lin{s} has {lin.size} weights, the VGG stage {channels} channels")
            self.lins.append(lin)
        self.calibrated = all(f"lin{s}.model.1.weight" in state or f"lin{s}.model.0.weight" in state
                              for s in range(5))
        self._compiled = None

    @classmethod
    def from_files(cls, paths):
        """One path, a list of paths, or 'a.pth,b.pth'."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [p for p in str(paths).split(",") if p]
        return cls(vgg16.read_state(paths, cls.flag, cls.error), source=", ".join(map(os.fspath, paths)))

    def features(self, images):
        """Unit-normalised features of the five stages for NHWC images in [-1, 1] (keras.ops: differentiable)."""
        from keras import ops
        x = ops.cast(images, "float32")
        if x.shape[-1] == 1:
            x = ops.tile(x, [1, 1, 1, 3])
        x = (x - SHIFT) / SCALE
        return [f / (ops.sqrt(ops.sum(ops.square(f), axis=-1, keepdims=True)) + 1e-10) for f in self.vgg.trunk(x)]

    def distance(self, a, b, b_features=None):
        """[N] LPIPS distances; `b_features` (from `features(b)`) saves recomputing a fixed target."""
        from keras import ops
        fb = self.features(b) if b_features is None else b_features
        total = 0.0
        for fa, fb_, lin in zip(self.features(a), fb, self.lins):
            total += ops.mean(ops.sum(ops.square(fa - fb_) * lin, axis=-1), axis=[1, 2])
        return total

    def distances(self, a, b, batch_size=32):
        """numpy [N] distances of NHWC image pairs in [-1, 1], compiled for the backend, in true float32."""
        from stylegan_tf.networks.inference import compiled
        if self._compiled is None:
            self._compiled = compiled(self._pair_graph, self.vgg.variables)
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.shape != b.shape or a.ndim != 4:
            raise ValueError(f"LPIPS needs two NHWC batches of one shape, got {a.shape} and {b.shape}")
        # Both images of each pair in one array, [n, 2, H, W, C], so that batches keep pairs together.
        return vgg16.run_batches(self._compiled, np.stack([a, b], axis=1), batch_size, 0).reshape(-1)

    def _pair_graph(self, pairs):
        return self.distance(pairs[:, 0], pairs[:, 1])


def load_lpips(lpips=None, vgg=None, download=True, progress=True):
    """LPIPS with the default weights: `lpips` (the heads' file, or 'vgg16.pth,heads.pth') and `vgg` (torchvision's
    VGG16) when given, else each from `vgg16.weights_path` (environment variable, cache folder, download)."""
    paths = [p for p in str(lpips).split(",") if p] if lpips is not None else []
    if len(paths) < 2:
        # The heads alone (or nothing): torchvision's trunk comes from --vgg16 / its default.
        paths = [vgg16.weights_path("vgg16", vgg, download, progress)] + \
                (paths or [vgg16.weights_path("lpips", None, download, progress)])
    for p in paths:
        if not os.path.isfile(p):
            raise vgg16.WeightsError(f"--lpips {p}: no such file ({vgg16.FILES['lpips']['what']})")
    return LPIPS.from_files(paths)
