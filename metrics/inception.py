"""FID-Inception: the 2015-12-05 TensorFlow Inception graph that every comparable FID uses, in Keras.

The architecture is torchvision's InceptionV3 layout with pytorch-fid's deviations that make it the
2015 graph (no conv bias, BatchNorm eps 1e-3, average pools that ignore the padding in blocks A/C/E_1,
a max pool in Mixed_7c, a 1008-way head). Weights come from pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`, read without torch (`torch_pth.py`), and are cached as a Keras
weights file. Features are `pool_3` (2048-d), computed in float32.

    from stylegan_tf.metrics import inception
    net = inception.load_fid_inception()                  # the default weights (see `default_weights_path`)
    net = inception.load_fid_inception(weights, mode="tf1")
    feats = net.features(uint8_images_nhwc)               # float32 [N, 2048]

`weights` is a `.pth` path, a converted `.weights.h5` path, or a dict name -> ndarray in pytorch-fid's
layout. `mode="tf1"` (default) preprocesses like TTUR / NVIDIA's StyleGAN metrics / clean-fid
`legacy_tensorflow`; `mode="pytorch"` like pytorch-fid.
"""
import contextlib
import hashlib
import os
import urllib.error
import urllib.request

import numpy as np
import keras

_BACKEND = keras.backend.backend()
if _BACKEND == "tensorflow":
    import tensorflow as tf

from stylegan_tf.atomic import atomic_path
from stylegan_tf.layers.serialization import register
from stylegan_tf.metrics import torch_pth
from stylegan_tf.paths import CACHE_ENV, cache_root

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
CONVERTED_NAME = "fid_inception-2015-12-05.weights.h5"
ENV_VAR = "STYLEGAN_TF_INCEPTION"
MODES = ("tf1", "pytorch")
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPSILON = 1e-3  # the 2015 graph's BatchNorm epsilon (torchvision's InceptionV3 uses the same)


class InceptionWeightsError(RuntimeError):
    """The FID-Inception weights are missing, cannot be fetched, or do not fit the network."""


class InceptionWeightsMissing(InceptionWeightsError):
    """The default weights are not in the cache and cannot be downloaded. The message names what every
    caller can do (fetch the file, set an environment variable); a CLI with a weights flag adds it."""


def cache_dir():
    """Where the weights are kept: the project's cache root (`stylegan_tf.paths.cache_root`)."""
    return cache_root()


# ----------------------------------------------------------------------------------------------
# The network.

@register
class BasicConv2d(keras.layers.Layer):
    """Conv (no bias) -> BatchNorm (inference, eps 1e-3) -> ReLU, the unit every Inception branch is made of.

    BatchNorm is folded into the convolution at call time (one conv + one add instead of conv + 4 ops):
    the result equals conv-then-normalise to float32 round-off.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in np.broadcast_to(kernel_size, (2,)))
        self.strides = int(strides)
        self.padding = padding

    def build(self, input_shape):
        cin = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (cin, self.filters),
                                      initializer="he_normal", trainable=False)
        self.gamma = self.add_weight(name="gamma", shape=(self.filters,), initializer="ones", trainable=False)
        self.beta = self.add_weight(name="beta", shape=(self.filters,), initializer="zeros", trainable=False)
        self.moving_mean = self.add_weight(name="moving_mean", shape=(self.filters,), initializer="zeros",
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(self.filters,),
                                               initializer="ones", trainable=False)

    def call(self, x):
        scale = self.gamma * keras.ops.rsqrt(self.moving_variance + BN_EPSILON)
        shift = self.beta - self.moving_mean * scale
        y = keras.ops.conv(x, self.kernel * scale, strides=self.strides, padding=self.padding)
        return keras.ops.relu(y + shift)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        if self.padding == "valid":
            h = None if h is None else (h - self.kernel_size[0]) // self.strides + 1
            w = None if w is None else (w - self.kernel_size[1]) // self.strides + 1
        else:
            h = None if h is None else -(-h // self.strides)
            w = None if w is None else -(-w // self.strides)
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}


def _conv(x, name, filters, kernel, strides=1, padding="same"):
    # Layer names are pytorch-fid's module paths with '.' -> '_' (Keras names may not hold dots).
    return BasicConv2d(filters, kernel, strides, padding, name=name.replace(".", "_"))(x)


def _avg_pool(x):
    # TF "same" average pooling divides by the number of real pixels: pytorch's count_include_pad=False.
    return keras.layers.AveragePooling2D(3, strides=1, padding="same")(x)


def _block_a(x, name, pool_features):
    b1 = _conv(x, f"{name}.branch1x1", 64, 1)
    b5 = _conv(_conv(x, f"{name}.branch5x5_1", 48, 1), f"{name}.branch5x5_2", 64, 5)
    b3 = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    b3 = _conv(_conv(b3, f"{name}.branch3x3dbl_2", 96, 3), f"{name}.branch3x3dbl_3", 96, 3)
    bp = _conv(_avg_pool(x), f"{name}.branch_pool", pool_features, 1)
    return keras.layers.Concatenate(name=name)([b1, b5, b3, bp])


def _block_b(x, name):
    b3 = _conv(x, f"{name}.branch3x3", 384, 3, 2, "valid")
    bd = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    bd = _conv(bd, f"{name}.branch3x3dbl_2", 96, 3)
    bd = _conv(bd, f"{name}.branch3x3dbl_3", 96, 3, 2, "valid")
    bp = keras.layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    return keras.layers.Concatenate(name=name)([b3, bd, bp])


def _block_c(x, name, c7):
    b1 = _conv(x, f"{name}.branch1x1", 192, 1)
    b7 = _conv(x, f"{name}.branch7x7_1", c7, 1)
    b7 = _conv(b7, f"{name}.branch7x7_2", c7, (1, 7))
    b7 = _conv(b7, f"{name}.branch7x7_3", 192, (7, 1))
    bd = _conv(x, f"{name}.branch7x7dbl_1", c7, 1)
    bd = _conv(bd, f"{name}.branch7x7dbl_2", c7, (7, 1))
    bd = _conv(bd, f"{name}.branch7x7dbl_3", c7, (1, 7))
    bd = _conv(bd, f"{name}.branch7x7dbl_4", c7, (7, 1))
    bd = _conv(bd, f"{name}.branch7x7dbl_5", 192, (1, 7))
    bp = _conv(_avg_pool(x), f"{name}.branch_pool", 192, 1)
    return keras.layers.Concatenate(name=name)([b1, b7, bd, bp])


def _block_d(x, name):
    b3 = _conv(_conv(x, f"{name}.branch3x3_1", 192, 1), f"{name}.branch3x3_2", 320, 3, 2, "valid")
    b7 = _conv(x, f"{name}.branch7x7x3_1", 192, 1)
    b7 = _conv(b7, f"{name}.branch7x7x3_2", 192, (1, 7))
    b7 = _conv(b7, f"{name}.branch7x7x3_3", 192, (7, 1))
    b7 = _conv(b7, f"{name}.branch7x7x3_4", 192, 3, 2, "valid")
    bp = keras.layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    return keras.layers.Concatenate(name=name)([b3, b7, bp])


def _block_e(x, name, max_pool):
    b1 = _conv(x, f"{name}.branch1x1", 320, 1)
    b3 = _conv(x, f"{name}.branch3x3_1", 384, 1)
    b3 = keras.layers.Concatenate()([_conv(b3, f"{name}.branch3x3_2a", 384, (1, 3)),
                                     _conv(b3, f"{name}.branch3x3_2b", 384, (3, 1))])
    bd = _conv(x, f"{name}.branch3x3dbl_1", 448, 1)
    bd = _conv(bd, f"{name}.branch3x3dbl_2", 384, 3)
    bd = keras.layers.Concatenate()([_conv(bd, f"{name}.branch3x3dbl_3a", 384, (1, 3)),
                                     _conv(bd, f"{name}.branch3x3dbl_3b", 384, (3, 1))])
    # Mixed_7c of the 2015 graph max-pools here; a known quirk that pytorch-fid reproduces.
    pool = (keras.layers.MaxPooling2D(3, strides=1, padding="same") if max_pool
            else keras.layers.AveragePooling2D(3, strides=1, padding="same"))
    bp = _conv(pool(x), f"{name}.branch_pool", 192, 1)
    return keras.layers.Concatenate(name=name)([b1, b3, bd, bp])


def build_fid_inception():
    """The FID-Inception graph as a Keras model: normalised [N, 299, 299, 3] -> (pool_3 [N, 2048], logits [N, 1008]).

    Always float32, even when training set a mixed-precision global policy: float16 features are not FIDs.
    """
    with _float32_policy():
        return _build()


@contextlib.contextmanager
def _float32_policy():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


@contextlib.contextmanager
def _full_float32():
    """Run convolutions in true float32: TF uses TensorFloat-32 (10-bit mantissa) on Ampere+ GPUs by default, and
    XLA (JAX) does too unless asked for the highest matmul precision."""
    if _BACKEND == "jax":
        import jax
        with jax.default_matmul_precision("highest"):
            yield
        return
    old = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(old)


def _build():
    inp = keras.Input((299, 299, 3), name="normalized_images")
    x = _conv(inp, "Conv2d_1a_3x3", 32, 3, 2, "valid")
    x = _conv(x, "Conv2d_2a_3x3", 32, 3, 1, "valid")
    x = _conv(x, "Conv2d_2b_3x3", 64, 3)
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    x = _conv(x, "Conv2d_3b_1x1", 80, 1)
    x = _conv(x, "Conv2d_4a_3x3", 192, 3, 1, "valid")
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    x = _block_a(x, "Mixed_5b", 32)
    x = _block_a(x, "Mixed_5c", 64)
    x = _block_a(x, "Mixed_5d", 64)
    x = _block_b(x, "Mixed_6a")
    x = _block_c(x, "Mixed_6b", 128)
    x = _block_c(x, "Mixed_6c", 160)
    x = _block_c(x, "Mixed_6d", 160)
    x = _block_c(x, "Mixed_6e", 192)
    x = _block_d(x, "Mixed_7a")
    x = _block_e(x, "Mixed_7b", max_pool=False)
    x = _block_e(x, "Mixed_7c", max_pool=True)
    pool3 = keras.layers.GlobalAveragePooling2D(name="pool_3")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="fc")(pool3)
    return keras.Model(inp, [pool3, logits], name="fid_inception_2015_12_05")


# ----------------------------------------------------------------------------------------------
# Preprocessing.

def preprocess(images, mode="tf1"):
    """uint8 / float [0, 255] NHWC RGB images of any size -> the network's [N, 299, 299, 3] float32 input."""
    if _BACKEND != "tensorflow":
        return _preprocess_ops(images, mode)
    x = tf.cast(images, tf.float32)
    if mode == "tf1":
        # TF1's resize_bilinear (no half-pixel centres: source = dst * in / out), then the graph's own
        # normalisation, as TTUR and NVIDIA feed it.
        x = tf.raw_ops.ResizeBilinear(images=x, size=[299, 299], align_corners=False, half_pixel_centers=False)
        return (x - 128.0) / 128.0
    if mode == "pytorch":
        # pytorch-fid: scale to [0, 1], torch bilinear (half-pixel centres, no antialias), then [-1, 1].
        x = x / 255.0
        x = tf.raw_ops.ResizeBilinear(images=x, size=[299, 299], align_corners=False, half_pixel_centers=True)
        return 2.0 * x - 1.0
    raise ValueError(f"mode={mode!r}: choose one of {', '.join(MODES)}")


def _resize_bilinear(x, size, half_pixel_centers):
    """TF's ResizeBilinear kernel (align_corners=False) in keras.ops, for backends without TensorFlow: source
    coordinate `dst * in/out` (legacy, TF1) or `(dst + 0.5) * in/out - 0.5` clamped at 0 (half-pixel), the two
    neighbours, then TF's order of interpolation (along x, then y)."""
    from keras import ops

    def axis(n_in, n_out):
        scale = np.float32(n_in / n_out)
        dst = np.arange(n_out, dtype=np.float32)
        src = (dst + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel_centers else dst * scale
        src = np.maximum(src, np.float32(0.0)) if half_pixel_centers else src
        lo = np.floor(src).astype(np.int32)
        hi = np.minimum(np.ceil(src).astype(np.int32), n_in - 1)
        return np.minimum(lo, n_in - 1), hi, (src - np.floor(src)).astype(np.float32)

    h, w = x.shape[1], x.shape[2]
    y0, y1, fy = axis(h, size[0])
    x0, x1, fx = axis(w, size[1])
    top, bottom = ops.take(x, y0, axis=1), ops.take(x, y1, axis=1)
    fx = ops.reshape(ops.convert_to_tensor(fx), [1, 1, -1, 1])
    fy = ops.reshape(ops.convert_to_tensor(fy), [1, -1, 1, 1])
    top = ops.take(top, x0, axis=2) + (ops.take(top, x1, axis=2) - ops.take(top, x0, axis=2)) * fx
    bottom = ops.take(bottom, x0, axis=2) + (ops.take(bottom, x1, axis=2) - ops.take(bottom, x0, axis=2)) * fx
    return top + (bottom - top) * fy


def _preprocess_ops(images, mode):
    from keras import ops
    x = ops.cast(images, "float32")
    if mode == "tf1":
        return (_resize_bilinear(x, (299, 299), False) - 128.0) / 128.0
    if mode == "pytorch":
        return 2.0 * _resize_bilinear(x / 255.0, (299, 299), True) - 1.0
    raise ValueError(f"mode={mode!r}: choose one of {', '.join(MODES)}")


def _compiled(fn, variables):
    """`fn` compiled for the backend: a tf.function with one signature (one trace for every batch and image
    size) under TensorFlow; otherwise the networks' compiled helper (jax.jit, weights passed as arguments)."""
    if _BACKEND == "tensorflow":
        return tf.function(fn, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    from stylegan_tf.networks.inference import compiled
    return compiled(fn, variables)


def quantize_images(images):
    """Generator output in [-1, 1] -> uint8, as NVIDIA's metrics quantise fakes: floor(x*127.5 + 128), clipped.

    (`image_grid.to_uint8` rounds instead; the metrics must match the original, so they truncate.)
    """
    x = np.asarray(images, dtype=np.float32) * 127.5 + 128.0
    return np.clip(np.floor(x), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Weights.

def _layer_prefixes(model):
    return {layer.name: layer for layer in model.layers if isinstance(layer, BasicConv2d)}


def assign_state_dict(model, state_dict, source="weights"):
    """Copy a pytorch-fid state dict (name -> ndarray) into `model`; every tensor must be used and fit."""
    convs = _layer_prefixes(model)
    expected = set()
    for prefix, layer in convs.items():
        torch_prefix = _torch_prefix(prefix)
        names = {f"{torch_prefix}.conv.weight": (layer.kernel, lambda w: np.transpose(w, (2, 3, 1, 0))),
                 f"{torch_prefix}.bn.weight": (layer.gamma, None),
                 f"{torch_prefix}.bn.bias": (layer.beta, None),
                 f"{torch_prefix}.bn.running_mean": (layer.moving_mean, None),
                 f"{torch_prefix}.bn.running_var": (layer.moving_variance, None)}
        expected.update(names)
        expected.add(f"{torch_prefix}.bn.num_batches_tracked")
        for name, (var, convert) in names.items():
            _assign(var, state_dict, name, convert, source)
    fc = model.get_layer("fc")
    _assign(fc.kernel, state_dict, "fc.weight", lambda w: np.transpose(w), source)
    _assign(fc.bias, state_dict, "fc.bias", None, source)
    expected.update(("fc.weight", "fc.bias"))
    extra = sorted(set(state_dict) - expected)
    if extra:
        raise InceptionWeightsError(f"{source}: unexpected tensor '{extra[0]}' ({len(extra)} in all); "
                                    "not pytorch-fid's FID-Inception state dict")


def _torch_prefix(layer_name):
    # Undo the '.' -> '_' of `_conv`: 'Mixed_5b_branch1x1' -> 'Mixed_5b.branch1x1'.
    if layer_name.startswith("Mixed_"):
        return layer_name[:8] + "." + layer_name[9:]
    return layer_name


def _assign(var, state_dict, name, convert, source):
    if name not in state_dict:
        raise InceptionWeightsError(f"{source}: tensor '{name}' is missing; not pytorch-fid's FID-Inception weights")
    value = np.asarray(state_dict[name], dtype=np.float32)
    if convert is not None:
        value = convert(value)
    if tuple(value.shape) != tuple(var.shape):
        raise InceptionWeightsError(f"{source}: tensor '{name}' has shape {value.shape}, expected {tuple(var.shape)}")
    var.assign(value)


def state_dict_digest(state_dict):
    """A content hash of the weights the network uses (float32), to key cached statistics: a stale
    cache must be impossible. BatchNorm's `num_batches_tracked` counters do not affect features."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        if name.endswith("num_batches_tracked"):
            continue
        a = np.ascontiguousarray(state_dict[name], dtype=np.float32)
        h.update(name.encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def default_weights_path(download=True, progress=True):
    """Where the FID-Inception weights are, fetching pytorch-fid's `.pth` on first use.

    Order: `$STYLEGAN_TF_INCEPTION`; the converted `<cache>/fid_inception-2015-12-05.weights.h5`;
    `<cache>/pt_inception-2015-12-05-6726825d.pth`; else download it from `WEIGHTS_URL`. `<cache>` is
    `stylegan_tf.paths.cache_root()` ($STYLEGAN_TF_CACHE, else ~/.cache/stylegan_tf).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if not os.path.isfile(env):
            raise InceptionWeightsError(f"${ENV_VAR}={env}: no such file; point it at {PTH_NAME} or a converted "
                                        f"{CONVERTED_NAME}")
        return env
    folder = cache_dir()
    converted = os.path.join(folder, CONVERTED_NAME)
    if os.path.isfile(converted):
        return converted
    pth = os.path.join(folder, PTH_NAME)
    if os.path.isfile(pth):
        return pth
    if not download:
        raise InceptionWeightsMissing(f"FID-Inception weights not found: {_fetch_yourself(pth)}")
    _download(WEIGHTS_URL, pth, progress)
    return pth


def _fetch_yourself(pth):
    # The remedies that hold for every tool (train.py has no weights flag; the metrics CLI adds its own).
    return (f"download {WEIGHTS_URL} to {pth} (the cache folder, which ${CACHE_ENV} can move), "
            f"or set ${ENV_VAR} to a copy of that file")


def _download(url, path, progress):
    from tqdm.auto import tqdm
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, disable=not progress,
                                              desc="FID-Inception weights") as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as e:
        reason = " ".join(str(getattr(e, "reason", None) or e).split())
        raise InceptionWeightsMissing(f"cannot download the FID-Inception weights ({reason}): "
                                      f"{_fetch_yourself(path)}") from None


class FIDInception:
    """FID-Inception with its preprocessing. `features(images)` -> float32 [N, 2048] numpy."""

    def __init__(self, model, mode="tf1", weights_id=""):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: choose one of {', '.join(MODES)}")
        self.model = model
        self.mode = mode
        self.weights_id = weights_id  # content hash of the weights, part of every statistics cache key
        self.feature_model = keras.Model(model.input, model.get_layer("pool_3").output)
        # One fixed signature: one trace for every batch size and image size (and no XLA detour that
        # Keras takes for convolutions whose channel count is unknown at trace time).
        self._run = _compiled(self._features_graph, self.feature_model.variables)

    @property
    def cache_key(self):
        return f"fid_inception-{self.weights_id}-{self.mode}"

    def _features_graph(self, images):
        return self.feature_model(preprocess(images, self.mode), training=False)

    def features(self, images, batch_size=50):
        """uint8 or float [0, 255] NHWC images (any size, 1 or 3 channels) -> float32 [N, 2048]."""
        return _batched_features(self._run, images, batch_size)

    def save_weights(self, path):
        """Write the converted weights as a Keras `.weights.h5` file, atomically."""
        with atomic_path(path, suffix=".weights.h5") as tmp:  # Keras insists on the suffix
            self.model.save_weights(tmp)


def load_fid_inception(weights=None, mode="tf1", progress=True):
    """Build FID-Inception and load `weights`: a `.pth` path, a converted `.weights.h5` path, a dict
    name -> ndarray in pytorch-fid's layout, or None for the default (see `default_weights_path`).

    A `.pth` is converted once to `<cache>/fid_inception-2015-12-05.weights.h5` when it is the default one.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: choose one of {', '.join(MODES)}")
    if isinstance(weights, dict):
        model = build_fid_inception()
        assign_state_dict(model, weights, "weights dict")
        return FIDInception(model, mode, state_dict_digest(weights))
    path = os.fspath(weights) if weights is not None else default_weights_path(progress=progress)
    if not os.path.isfile(path):
        raise InceptionWeightsError(f"{path}: FID-Inception weights not found (a {PTH_NAME} or a converted "
                                    f"{CONVERTED_NAME})")
    if path.endswith(".h5"):
        model = build_fid_inception()
        try:
            model.load_weights(path)
        except Exception as e:  # Keras raises several types for a wrong or broken file
            raise InceptionWeightsError(f"{path}: not a converted FID-Inception weights file ({e})") from None
        # Hash what was loaded, not the file: an .h5 and the .pth it came from then share cached statistics.
        return FIDInception(model, mode, _model_digest(model))
    try:
        state = torch_pth.load_state_dict(path)
    except (ValueError, torch_pth.UnsafePickleError) as e:
        detail = str(e).removeprefix(f"{path}: ")
        raise InceptionWeightsError(f"{path}: cannot read FID-Inception weights: {detail}") from None
    model = build_fid_inception()
    assign_state_dict(model, state, path)
    net = FIDInception(model, mode, state_dict_digest(state))
    default_pth = os.path.join(cache_dir(), PTH_NAME)
    if weights is None and os.path.abspath(path) == os.path.abspath(default_pth):
        net.save_weights(os.path.join(cache_dir(), CONVERTED_NAME))
    return net


def _model_digest(model):
    """The digest `state_dict_digest` gives for the state dict these weights came from."""
    state = {}
    for prefix, layer in _layer_prefixes(model).items():
        t = _torch_prefix(prefix)
        state[f"{t}.conv.weight"] = np.transpose(layer.kernel.numpy(), (3, 2, 0, 1))
        state[f"{t}.bn.weight"] = layer.gamma.numpy()
        state[f"{t}.bn.bias"] = layer.beta.numpy()
        state[f"{t}.bn.running_mean"] = layer.moving_mean.numpy()
        state[f"{t}.bn.running_var"] = layer.moving_variance.numpy()
    fc = model.get_layer("fc")
    state["fc.weight"] = fc.kernel.numpy().T
    state["fc.bias"] = fc.bias.numpy()
    return state_dict_digest(state)


# ----------------------------------------------------------------------------------------------
# keras.applications: a different network, offered only under an explicit, non-comparable name.

class KerasApplicationsInception:
    """`keras.applications.InceptionV3(weights="imagenet")` pool features. NOT comparable with published FIDs
    (other weights, 1000 classes, other preprocessing); name your metric accordingly."""

    mode = "keras-applications"

    def __init__(self):
        with _float32_policy():
            self.model = keras.applications.InceptionV3(include_top=False, weights="imagenet", pooling="avg",
                                                        input_shape=(299, 299, 3))
        self.weights_id = "keras-applications-imagenet"
        self._run = _compiled(self._graph, self.model.variables)

    @property
    def cache_key(self):
        return "keras_applications_inception_v3"

    def _graph(self, images):
        if _BACKEND == "tensorflow":
            x = tf.image.resize(images, [299, 299], method="bilinear")
        else:
            x = _resize_bilinear(images, (299, 299), True)    # tf.image.resize: half-pixel centres, no antialias
        return self.model(x / 127.5 - 1.0, training=False)

    def features(self, images, batch_size=50):
        return _batched_features(self._run, images, batch_size)


def _batched_features(run, images, batch_size):
    """Feed NHWC images (numpy or tensor, uint8 or float, 1 or 3 channels) to `run` in float32 batches."""
    images = keras.ops.convert_to_numpy(images) if not isinstance(images, np.ndarray) else images
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be NHWC with 1 or 3 channels, got shape {images.shape}")
    out = []
    with _full_float32():
        for i in range(0, images.shape[0], batch_size):
            batch = images[i:i + batch_size].astype(np.float32)
            if batch.shape[-1] == 1:  # grayscale datasets: the network wants RGB
                batch = np.repeat(batch, 3, axis=-1)
            out.append(keras.ops.convert_to_numpy(run(batch)))
    return np.concatenate(out, axis=0) if out else np.zeros((0, FEATURE_DIM), np.float32)
