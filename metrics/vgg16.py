"""VGG16 (Simonyan & Zisserman 2015) as torchvision defines it, in keras.ops, and the weight files the
perceptual metrics use: torchvision's VGG16 and the `lpips` package's v0.1 linear heads, read without PyTorch.

The trunk serves LPIPS (`metrics/lpips.py`: perceptual path length, projection); the trunk and the first two
fully connected layers give the fc2 features of precision and recall (`metrics/precision_recall.py`).

    from stylegan_tf.metrics import vgg16
    net = vgg16.VGG16.from_file(vgg16.weights_path("vgg16"), classifier=True)
    feats = net.fc2_features(uint8_images_nhwc)          # float32 [N, 4096]

Weight files (`weights_path(kind)`), looked up in this order: the path given (`--vgg16` / `--lpips`), the
environment variable, the cache folder (`stylegan_tf.paths.cache_root()`), for the heads the installed `lpips`
package (its wheel ships them; nothing of it is imported), else downloaded from its project's own URL into the
cache folder and checked against the hash below before it is used.
"""
import hashlib
import os
import urllib.error
import urllib.request

import numpy as np
import keras

from stylegan_tf.atomic import atomic_path
from stylegan_tf.paths import CACHE_ENV, cache_root


class WeightsError(RuntimeError):
    """A VGG16 / LPIPS weight file is missing, unreadable or not what it should be (one line)."""


class WeightsMissing(WeightsError):
    """A default weight file is not in the cache and cannot be downloaded; the message says what to do.
    `flag` names the command-line flag that supplies the file (a CLI adds it to the message); when several files
    are missing (`metric_base.prepare_metrics` tries them all), their flags, separated by spaces."""

    def __init__(self, message, flag=""):
        super().__init__(message)
        self.flag = flag


# kind -> (file name in the cache, URL, sha256 (a prefix for torchvision's file, which names the first 8 hex
# digits as torch.hub checks them; the whole digest for the heads), size in bytes, environment variable, flag).
FILES = {
    "vgg16": dict(name="vgg16-397923af.pth", url="https://download.pytorch.org/models/vgg16-397923af.pth",
                  sha256="397923af", size=None, env="STYLEGAN_TF_VGG16", flag="--vgg16",
                  what="torchvision's VGG16 weights (about 528 MiB)"),
    "lpips": dict(name="lpips-v0.1-vgg.pth",
                  url="https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/"
                      "v0.1/vgg.pth",
                  sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", size=7289,
                  env="STYLEGAN_TF_LPIPS", flag="--lpips", what="the LPIPS v0.1 VGG linear heads (7,289 bytes)"),
}
# torchvision's `features` indices of the 13 convolutions, by stage; a 2x2 max pool follows each stage.
STAGES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
# torchvision's classifier: Linear(25088, 4096) at 0, Linear(4096, 4096) at 3 (ReLU after each; fc2 is the 2nd).
CLASSIFIER = (0, 3)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
INPUT_SIZE = 224


# ----------------------------------------------------------------------------------------------
# Weight files.

def weights_path(kind, path=None, download=True, progress=True):
    """The file of `kind` ("vgg16" or "lpips"): `path` if given, else the environment variable, the cache
    folder, the installed `lpips` package (heads only), else a verified download into the cache folder.

    Raises `WeightsError` (one line) for a named file that does not exist, `WeightsMissing` when the default
    cannot be had (its message names the cache path and the URL).
    """
    spec = FILES[kind]
    if path is not None:
        if not os.path.isfile(path):
            raise WeightsError(f"{spec['flag']} {path}: no such file ({spec['what']}: {spec['name']})")
        return os.fspath(path)
    env = os.environ.get(spec["env"])
    if env:
        if not os.path.isfile(env):
            raise WeightsError(f"${spec['env']}={env}: no such file; point it at {spec['name']}")
        return env
    cached = os.path.join(cache_root(), spec["name"])
    if os.path.isfile(cached):
        return cached
    shipped = _lpips_package_file() if kind == "lpips" else None
    if shipped:
        return shipped
    if not download:
        raise WeightsMissing(f"{spec['what']} not found: {fetch_yourself(kind)}", spec["flag"])
    _download(kind, cached, progress)
    return cached


def origin(kind, path=None):
    """Where the file of `kind` that `weights_path(kind, path)` finds comes from, for messages: the flag, the
    environment variable, or nothing (the cache folder's or the lpips package's file is named by its path)."""
    spec = FILES[kind]
    if path is not None:
        return spec["flag"]
    return f"${spec['env']}" if os.environ.get(spec["env"]) else "weights file"


def check_weights(kind, path, classifier=False, source=None, heads=True):
    """Read the file of `kind` ("vgg16" or "lpips") now and check it has the layers the metrics need (with
    `classifier`, VGG16's fc1 and fc2 too; for "lpips" with `heads`, the LPIPS heads), so that a wrong or damaged
    file fails before training starts, not at its first snapshot. `source` names where the file came from
    (`origin`). Numpy only: nothing is built. Raises `WeightsError` (one line)."""
    source = source or origin(kind)
    label = f"{source} {os.fspath(path)}" if source.startswith(("-", "$")) else os.fspath(path)
    state = read_state([path], label)
    if kind == "vgg16":
        vgg16_layers(state, label, classifier)
    elif heads and not any(k.startswith("lin") for k in state):
        raise WeightsError(f"{label}: no LPIPS heads (lin0 ... lin4) in it; it should be {FILES['lpips']['name']} "
                           f"({FILES['lpips']['url']})")


def fetch_yourself(kind):
    """What a user can do when the file of `kind` is missing: the URL, the cache path, the variable."""
    spec = FILES[kind]
    cached = os.path.join(cache_root(), spec["name"])
    return (f"download {spec['url']} to {cached} (the cache folder, which ${CACHE_ENV} can move), "
            f"or set ${spec['env']} to a copy of that file")


def _lpips_package_file():
    # The `lpips` wheel on PyPI ships the heads: find the file without importing the package (it imports torch).
    import importlib.util
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, "weights", "v0.1", "vgg.pth")
        if os.path.isfile(candidate):
            return candidate
    return None


def _download(kind, path, progress):
    from tqdm.auto import tqdm
    spec = FILES[kind]
    digest = hashlib.sha256()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with urllib.request.urlopen(spec["url"], timeout=60) as response, atomic_path(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, disable=not progress,
                                              desc=spec["name"]) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            # Checked before the rename: a wrong or truncated file never lands in the cache.
            if not digest.hexdigest().startswith(spec["sha256"]) or \
                    (spec["size"] is not None and os.path.getsize(tmp) != spec["size"]):
                raise WeightsError(f"{spec['url']}: the download has sha256 {digest.hexdigest()[:16]}..., not "
                                   f"{spec['sha256'][:16]}...; not saved. {fetch_yourself(kind)}")
    except (urllib.error.URLError, OSError) as e:
        reason = " ".join(str(getattr(e, "reason", None) or e).split())
        raise WeightsMissing(f"cannot download {spec['what']} ({reason}): {fetch_yourself(kind)}",
                             spec["flag"]) from None


def read_state(paths, flag="--vgg16", error=WeightsError):
    """One or more `.pth` state dicts merged, names normalised to torchvision's (`features.N.*`, `classifier.N.*`)
    and the heads' (`linK.model.1.weight`); an `lpips.LPIPS` state dict (`net.sliceK.N.*`) works too."""
    import re

    from stylegan_tf.metrics.torch_pth import load_state_dict
    merged = {}
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise error(f"{flag}: {path} does not exist")
        try:
            state = load_state_dict(path)
        except Exception as exc:  # noqa: BLE001 - refused pickles and foreign files both mean: not usable here
            where = flag if flag.endswith(path) else f"{flag}: {path}"
            raise error(f"{where} is not a readable PyTorch state dict "
                        f"({' '.join(str(exc).split())[:160]})") from None
        for key, value in state.items():
            key = re.sub(r"^net\.slice\d+\.", "features.", str(key))
            key = re.sub(r"^(module\.|features\.features\.)", "features.", key)
            merged[key] = np.asarray(value, np.float32)
    return merged


# ----------------------------------------------------------------------------------------------
# The network.

def vgg16_layers(state, source="weights", classifier=False, error=WeightsError):
    """The checked layers of a torchvision VGG16 state dict, in our layouts (numpy, nothing built):
    ({features index: (HWIO kernel, bias)}, [(fc1 [in, out], bias), (fc2, bias)] or [] without `classifier`).
    Raises `error` naming `source` and the first layer that is missing or does not fit."""
    convs, fcs, cin = {}, [], 3
    for stage in STAGES:
        for idx in stage:
            w, b = state.get(f"features.{idx}.weight"), state.get(f"features.{idx}.bias")
            if w is None or b is None or w.ndim != 4 or w.shape[1] != cin or w.shape[2:] != (3, 3):
                raise error(f"{source}: no VGG16 layer features.{idx} that fits (give torchvision's vgg16 .pth)")
            convs[idx] = (np.transpose(w, (2, 3, 1, 0)), b)     # torch OIHW -> HWIO
            cin = w.shape[0]
    if classifier:
        fan_in = cin * 7 * 7
        for idx in CLASSIFIER:
            w, b = state.get(f"classifier.{idx}.weight"), state.get(f"classifier.{idx}.bias")
            if w is None or b is None or w.ndim != 2 or w.shape[1] != fan_in:
                raise error(f"{source}: no VGG16 layer classifier.{idx} that fits (precision/recall need "
                            "torchvision's whole vgg16 .pth, classifier included)")
            if idx == 0:
                # torch flattens [C, 7, 7]; our maps are [7, 7, C]: reorder fc1's inputs once.
                w = w.reshape(w.shape[0], cin, 7, 7).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            fcs.append((np.ascontiguousarray(w.T), b))
            fan_in = w.shape[0]
    return convs, fcs


def area_resize_matrix(n_in, n_out):
    """[n_out, n_in] averaging weights of torch's `interpolate(mode='area')` (adaptive average pooling): output i
    averages inputs floor(i*n_in/n_out) .. ceil((i+1)*n_in/n_out) - 1. Down- and upsampling alike."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class VGG16:
    """torchvision's VGG16: the 13-convolution trunk, and with `classifier` the fc1 and fc2 layers.

    Args:
        state: name -> ndarray in torchvision's layout (`features.N.weight` OIHW, `classifier.N.weight` [out, in]).
        source: named in error messages.
        classifier: also load fc1/fc2 (precision and recall need them; LPIPS does not).
        error: the exception class raised for weights that do not fit.

    Example:
        >>> net = VGG16(state, classifier=True)
        >>> net.fc2_features(images_uint8)   # [N, 4096]
    """

    def __init__(self, state, source="weights", classifier=False, error=WeightsError):
        convs, fcs = vgg16_layers(state, source, classifier, error)
        # Non-trainable variables: compiled functions read them, JAX passes them in.
        self.convs = {idx: (keras.Variable(w, trainable=False), keras.Variable(b, trainable=False))
                      for idx, (w, b) in convs.items()}
        self.stage_channels = [int(convs[s[-1]][1].shape[0]) for s in STAGES]
        self.fcs = [(keras.Variable(w, trainable=False), keras.Variable(b, trainable=False)) for w, b in fcs]
        self._fc2 = {}    # (height, width) -> compiled function: the resize matrices are static per size

    @classmethod
    def from_file(cls, path, classifier=False, flag="--vgg16", error=WeightsError):
        """Read torchvision's `.pth` (without torch) and build the network."""
        return cls(read_state([path], flag, error), source=os.fspath(path), classifier=classifier, error=error)

    @property
    def variables(self):
        return [v for pair in list(self.convs.values()) + self.fcs for v in pair]

    def trunk(self, x):
        """The five stages' last ReLU outputs (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of NHWC input `x`
        (already normalised); each stage after the first starts with a 2x2 max pool (odd sizes floor, as torch)."""
        from keras import ops
        out = []
        for s, stage in enumerate(STAGES):
            if s:
                x = ops.max_pool(x, 2, 2, padding="valid")
            for idx in stage:
                w, b = self.convs[idx]
                x = ops.relu(ops.conv(x, w, strides=1, padding="same") + b)
            out.append(x)
        return out

    def _fc2_graph(self, images):
        from keras import ops
        x = ops.cast(images, "float32")
        if x.shape[-1] == 1:
            x = ops.tile(x, [1, 1, 1, 3])
        # torch's area resize to 224x224 (as NVIDIA's feature detector resizes), then ImageNet normalisation.
        rh = ops.convert_to_tensor(area_resize_matrix(x.shape[1], INPUT_SIZE))
        rw = ops.convert_to_tensor(area_resize_matrix(x.shape[2], INPUT_SIZE))
        x = ops.einsum("yh,nhwc,xw->nyxc", rh, x, rw)
        x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        x = ops.max_pool(self.trunk(x)[-1], 2, 2, padding="valid")     # pool5: [N, 7, 7, 512]
        x = ops.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])
        for w, b in self.fcs:
            x = ops.relu(ops.matmul(x, w) + b)
        return x

    def fc2_features(self, images, batch_size=32):
        """uint8 or float [0, 255] NHWC images (any size, 1 or 3 channels) -> float32 [N, 4096]: fc2 after its
        ReLU, the features of Kynkaenniemi et al.'s precision and recall."""
        if not self.fcs:
            raise ValueError("this VGG16 was loaded without its classifier (classifier=True)")
        images = np.asarray(images)
        size = tuple(images.shape[1:3])
        if size not in self._fc2:
            from stylegan_tf.networks.inference import compiled
            self._fc2[size] = compiled(self._fc2_graph, self.variables)
        return run_batches(self._fc2[size], images, batch_size, 4096)


def run_batches(run, images, batch_size, dim):
    """Feed NHWC images to a compiled `run` in float32 batches, in true float32 (no TF32 on GPUs)."""
    from stylegan_tf.metrics.inception import _full_float32
    images = np.asarray(images)
    out = []
    with _full_float32():
        for i in range(0, images.shape[0], batch_size):
            out.append(keras.ops.convert_to_numpy(run(images[i:i + batch_size].astype(np.float32))))
    return np.concatenate(out, axis=0) if out else np.zeros((0, dim), np.float32)
