"""StyleGAN layers: equalized lr, norms, style mod, noise, blur, resampling (incl. fused forms), mbstd."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as _np

from stylegan_tf import layers as L


def _np_conv_same(x, w):
    """Plain numpy NHWC cross-correlation with zero SAME padding (reference for tf.nn.conv2d)."""
    k = w.shape[0]
    p = k // 2
    xp = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    n, h, wd, _ = x.shape
    out = np.zeros([n, h, wd, w.shape[3]], np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd], w[i, j])
    return out


def test_equalized_dense_runtime_scale_and_init():
    keras.utils.set_random_seed(0)
    d = L.EqualizedDense(400, 300, gain=np.sqrt(2), lrmul=0.01)
    w = d.weight.numpy()
    assert abs(w.std() - 100.0) / 100.0 < 0.02          # raw init N(0, 1/lrmul)
    x = np.random.RandomState(0).randn(4, 300).astype(np.float32)
    expected = x @ (w * np.sqrt(2) / np.sqrt(300) * 0.01)
    np.testing.assert_allclose(_np(d(x)), expected, rtol=1e-4, atol=1e-4)
    b = L.Bias(400, lrmul=0.01)
    b.bias.assign(np.full([400], 3.0, np.float32))
    np.testing.assert_allclose(_np(b(np.zeros([1, 400], np.float32))), 0.03, rtol=1e-6)


def test_equalized_conv_matches_numpy():
    keras.utils.set_random_seed(1)
    c = L.EqualizedConv2D(4, 3, kernel=3, gain=1.0)
    assert abs(c.coef - 1.0 / np.sqrt(27)) < 1e-9
    x = np.random.RandomState(1).randn(2, 5, 5, 3).astype(np.float32)
    np.testing.assert_allclose(_np(c(x)), _np_conv_same(x, c.weight.numpy() * c.coef), atol=1e-5)


def test_pixel_and_instance_norm():
    x = np.random.RandomState(2).randn(3, 4, 4, 5).astype(np.float32) * 3 + 1
    pn = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(_np(L.PixelNorm()(x)), pn, rtol=1e-5, atol=1e-6)
    y = x - x.mean((1, 2), keepdims=True)
    inn = y / np.sqrt((y ** 2).mean((1, 2), keepdims=True) + 1e-8)
    np.testing.assert_allclose(_np(L.InstanceNorm()(x)), inn, rtol=1e-4, atol=1e-5)


def test_style_mod_scale_first_then_shift():
    sm = L.StyleMod(2, 3)
    sm.dense.weight.assign(np.zeros([3, 4], np.float32))
    sm.bias.bias.assign(np.array([1.0, 2.0, 10.0, 20.0], np.float32))  # scale-1 = (1, 2), shift = (10, 20)
    x = np.ones([1, 2, 2, 2], np.float32)
    out = _np(sm(x, np.zeros([1, 3], np.float32)))
    np.testing.assert_allclose(out[0, 0, 0], [1 * 2 + 10, 1 * 3 + 20])


def test_adain_is_instance_norm_then_style_mod():
    """The epilogue folds instance norm and the style's scale into one factor; same function as the two steps."""
    keras.utils.set_random_seed(3)
    x = np.random.RandomState(3).randn(3, 4, 4, 5).astype(np.float32) * 3 + 1
    w = np.random.RandomState(4).randn(3, 6).astype(np.float32)
    sm = L.StyleMod(5, 6)
    two_steps = _np(sm(L.InstanceNorm()(x), w))
    scale, shift = sm.scale_shift(w, "float32")
    np.testing.assert_allclose(_np(L.instance_norm(x, scale=scale, shift=shift)), two_steps, rtol=1e-5, atol=1e-5)
    ep = L.LayerEpilogue(5, 6, use_noise=False)
    ep.style_mod.set_weights(sm.get_weights())
    ep.bias.bias.assign(np.linspace(-1, 1, 5).astype(np.float32))
    y = x + np.linspace(-1, 1, 5).astype(np.float32)
    np.testing.assert_allclose(_np(ep(x, w)), _np(sm(L.InstanceNorm()(np.maximum(y, 0.2 * y)), w)), atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="inspects the TensorFlow graph; the equality tests run on every backend")
def test_epilogue_runs_in_float32_under_bf16_training():
    """Under mixed_bfloat16 the epilogue takes and returns bfloat16 but computes noise, bias, lrelu and AdaIN in
    float32 (faster elementwise kernels on CPU, and the norm needs float32 statistics anyway)."""
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ep = L.LayerEpilogue(4, 6, name="ep")
    finally:
        keras.mixed_precision.set_global_policy(old)
    x = tf.cast(tf.random.stateless_normal([2, 8, 8, 4], seed=[0, 1]), "bfloat16")
    w, noise = tf.zeros([2, 6]), tf.ones([2, 8, 8, 1])
    graph = tf.function(lambda x: ep(x, w, noise=noise)).get_concrete_function(x).graph
    dtypes = {op.type: op.outputs[0].dtype for op in graph.get_operations() if op.type in ("LeakyRelu", "Square")}
    assert dtypes == {"LeakyRelu": tf.float32, "Square": tf.float32}, dtypes
    out = ep(x, w, noise=noise)
    assert out.dtype == tf.bfloat16
    ref = L.LayerEpilogue(4, 6)
    ref.set_weights(ep.get_weights())
    np.testing.assert_allclose(_np(tf.cast(out, "float32")), _np(ref(tf.cast(x, "float32"), w, noise=noise)),
                               atol=0.02)


def test_noise_injection_per_channel_weight():
    n = L.NoiseInjection(3)
    assert np.all(n.weight.numpy() == 0)
    n.weight.assign([1.0, 0.0, -2.0])
    x = np.zeros([1, 2, 2, 3], np.float32)
    noise = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    out = _np(n(x, noise))
    np.testing.assert_allclose(out[..., 0], noise[..., 0])
    np.testing.assert_allclose(out[..., 2], -2 * noise[..., 0])
    assert np.all(_np(n(x, None)) == x)


def test_blur_kernel_and_padding():
    x = np.zeros([1, 5, 5, 2], np.float32)
    x[0, 2, 2, 1] = 16.0
    out = _np(L.Blur(2)(x))
    np.testing.assert_allclose(out[0, 1:4, 1:4, 1], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert np.all(out[..., 0] == 0)
    corner = _np(L.Blur(1)(np.ones([1, 3, 3, 1], np.float32)))[0, 0, 0, 0]
    assert corner == pytest.approx(9 / 16)                    # zero padding, as the original
    assert np.all(_np(L.Blur(2, None)(x)) == x)


def test_upscale_downscale_exact():
    x = np.random.RandomState(3).randn(2, 4, 4, 3).astype(np.float32)
    up = _np(L.upscale2d(x, 2))
    np.testing.assert_array_equal(up, x.repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(_np(L.upscale2d(x, 4)), x.repeat(4, 1).repeat(4, 2))
    down = _np(L.downscale2d(x))
    np.testing.assert_allclose(down, x.reshape(2, 2, 2, 2, 2, 3).mean((2, 4)), atol=1e-6)
    np.testing.assert_allclose(_np(L.downscale2d(up)), x, atol=1e-6)
    np.testing.assert_allclose(_np(L.downscale2d(x, 4)), x.mean((1, 2), keepdims=True), atol=1e-6)


def _official_fused_upconv(x, w):
    """The original's fused formulation, written out: 4x4 kernel = sum of the 3x3 kernel's four shifts,
    applied as a stride-2 transposed conv (filter layout [k, k, out, in])."""
    wt = np.transpose(w, [0, 1, 3, 2])
    wp = np.pad(wt, [(1, 1), (1, 1), (0, 0), (0, 0)])
    k4 = wp[1:, 1:] + wp[:-1, 1:] + wp[1:, :-1] + wp[:-1, :-1]
    n, h, wd, _ = x.shape
    return tf.nn.conv2d_transpose(x, k4, [n, 2 * h, 2 * wd, w.shape[3]], strides=2, padding="SAME").numpy()


def test_fused_upconv_is_transposed_conv_and_flipped_kernel():
    keras.utils.set_random_seed(4)
    fused = L.UpConv2D(6, 5, fused=True)
    plain = L.UpConv2D(6, 5, fused=False)
    plain.weight.assign(fused.weight)
    x = np.random.RandomState(4).randn(2, 6, 6, 5).astype(np.float32)
    w = _np(fused.scaled_kernel())
    got = _np(fused(x))
    np.testing.assert_allclose(got, _official_fused_upconv(x, w), atol=1e-5)
    flipped = _np_conv_same(x.repeat(2, 1).repeat(2, 2), w[::-1, ::-1])
    np.testing.assert_allclose(got, flipped, atol=1e-4)
    # The classic mistake (unflipped kernel) is wrong by O(1):
    assert np.abs(got - _np(plain(x))).max() > 0.1
    np.testing.assert_allclose(_np(plain(x)), _np_conv_same(x.repeat(2, 1).repeat(2, 2), w), atol=1e-4)


def test_fused_downconv_is_conv_then_box():
    keras.utils.set_random_seed(5)
    fused = L.DownConv2D(4, 3, fused=True)
    plain = L.DownConv2D(4, 3, fused=False)
    plain.weight.assign(fused.weight)
    x = np.random.RandomState(5).randn(2, 8, 8, 3).astype(np.float32)
    ref = _np_conv_same(x, _np(fused.scaled_kernel())).reshape(2, 4, 2, 4, 2, 4).mean((2, 4))
    np.testing.assert_allclose(_np(fused(x)), ref, atol=1e-5)
    np.testing.assert_allclose(_np(plain(x)), ref, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="inspects the TensorFlow graph; the equality tests above run on every backend")
def test_resampling_convs_run_as_one_stride2_op():
    """Below 128^2 the original upscales then convolves, or convolves then box-averages: 9 (up) and 36 (down)
    multiply-adds per output pixel, the latter with a strided 6-D Sum (slow in TensorFlow). Both layers must run
    the equal one-op form (4 and 16) at every resolution; the tests above check that it is the same function."""
    for layer, op_type in ((L.UpConv2D(4, 3, fused=False), "Conv2DBackpropInput"),
                           (L.DownConv2D(4, 3, fused=False), "Conv2D")):
        graph = tf.function(layer).get_concrete_function(tf.zeros([2, 8, 8, 3])).graph
        types = [op.type for op in graph.get_operations()]
        convs = [op for op in graph.get_operations() if op.type == op_type]
        assert len(convs) == 1 and list(convs[0].get_attr("strides")) == [1, 2, 2, 1], (op_type, types)
        assert types.count("Conv2D") + types.count("Conv2DBackpropInput") == 1, types
        assert not {"Sum", "Mean", "Tile"} & set(types), types


def test_minibatch_stddev_strided_groups():
    x = np.random.RandomState(6).randn(8, 4, 4, 6).astype(np.float32)
    out = _np(L.minibatch_stddev(x, 4, 1))
    assert out.shape == (8, 4, 4, 7)
    np.testing.assert_array_equal(out[..., :6], x)
    for i in range(8):
        members = x[i % 2::2]                                   # M = 2 groups, sample i in group i mod 2
        expected = np.sqrt(members.var(0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, :, :, 6], expected, rtol=1e-5)
    two = _np(L.minibatch_stddev(x, 4, 2))                   # channel groups: first 3, last 3
    m = x[0::2]
    np.testing.assert_allclose(two[0, 0, 0, 6:], [np.sqrt(m[..., :3].var(0) + 1e-8).mean(),
                                                  np.sqrt(m[..., 3:].var(0) + 1e-8).mean()], rtol=1e-5)
    small = _np(L.minibatch_stddev(x[:2], 4, 1))              # group = min(4, N)
    np.testing.assert_allclose(small[0, 0, 0, 6], np.sqrt(x[:2].var(0) + 1e-8).mean(), rtol=1e-5)


def test_layers_twice_differentiable():
    keras.utils.set_random_seed(7)
    up, down = L.UpConv2D(4, 3, fused=True), L.DownConv2D(4, 4, fused=True)
    blur, inorm = L.Blur(4), L.InstanceNorm()
    x = np.random.RandomState(7).randn(4, 4, 4, 3).astype(np.float32)
    weights = [up.weight, down.weight]

    def score(x):  # what R1 differentiates: D's output through every resampling layer
        y = down(blur(L.apply_activation(inorm(up(x)), "lrelu")))
        return keras.ops.sum(L.minibatch_stddev(y) ** 2)

    if keras.backend.backend() == "jax":
        import jax

        def score_of(x, values):  # the weights as arguments, so that jax.grad sees them
            with keras.StatelessScope(state_mapping=list(zip(weights, values))):
                return score(x)

        values = [v.value for v in weights]
        g = jax.grad(score_of)(x, values)
        gg = jax.grad(lambda values: jax.numpy.sum(jax.grad(score_of)(x, values) ** 2))(values)
    else:
        x = tf.constant(x)

        @tf.function
        def grads():
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = score(x)
                g = inner.gradient(y, x)
                r1 = tf.reduce_sum(tf.square(g))
            return g, outer.gradient(r1, weights)

        g, gg = grads()
    assert np.all(np.isfinite(_np(g))) and np.abs(_np(g)).max() > 0
    for v in gg:
        assert v is not None and np.all(np.isfinite(_np(v))) and np.abs(_np(v)).max() > 0


def _registered_layer_classes():
    """Every layer class stylegan_tf.layers registers with Keras, i.e. every layer a .keras file can hold."""
    return sorted(name.split(">")[-1] for name, cls in keras.saving.get_custom_objects().items()
                  if isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
                  and cls.__module__.startswith("stylegan_tf.layers."))


_RNG = np.random.RandomState(8)
_X = _RNG.randn(4, 4, 4, 2).astype(np.float32)      # NHWC feature maps, 2 channels
_W = _RNG.randn(4, 6).astype(np.float32)            # one dlatent per sample, 6 wide
_NOISE = _RNG.randn(4, 4, 4, 1).astype(np.float32)  # one noise map per sample
# Layer class -> (a layer with non-default arguments where it has any, so that a setting get_config forgets
# changes the output; its call on fixed inputs).
ROUND_TRIP = {
    "EqualizedDense": (lambda: L.EqualizedDense(3, 2, gain=1.0, lrmul=0.1), lambda f: f(_X[:, 0, 0])),
    "EqualizedConv2D": (lambda: L.EqualizedConv2D(3, 2, kernel=1, gain=1.0, lrmul=0.5), lambda f: f(_X)),
    "Bias": (lambda: L.Bias(2, lrmul=0.5), lambda f: f(_X)),
    "UpConv2D": (lambda: L.UpConv2D(3, 2, fused=True), lambda f: f(_X)),
    "DownConv2D": (lambda: L.DownConv2D(3, 2, fused=True), lambda f: f(_X)),
    "Blur": (lambda: L.Blur(2), lambda f: f(_X)),
    "MinibatchStddev": (lambda: L.MinibatchStddev(2, 1), lambda f: f(_X)),
    "ToRGB": (lambda: L.ToRGB(3, 2), lambda f: f(_X)),
    "FromRGB": (lambda: L.FromRGB(4, 2, nonlinearity="relu"), lambda f: f(_X)),
    "PixelNorm": (lambda: L.PixelNorm(epsilon=0.5), lambda f: f(_X)),
    "InstanceNorm": (lambda: L.InstanceNorm(epsilon=0.5), lambda f: f(_X)),
    "StyleMod": (lambda: L.StyleMod(2, 6), lambda f: f(_X, _W)),
    "NoiseInjection": (lambda: L.NoiseInjection(2), lambda f: f(_X, _NOISE)),
    "LayerEpilogue": (lambda: L.LayerEpilogue(2, 6, use_pixel_norm=True, nonlinearity="relu"),
                      lambda f: f(_X, _W, _NOISE)),
    "LabelConcat": (lambda: L.LabelConcat(3, 5), lambda f: f(_W[:, :5], _W[:, 3:])),
    "ConstInput": (lambda: L.ConstInput(2, size=8), lambda f: f(_W)),  # tiled over _W's batch
}


def test_every_registered_layer_has_a_round_trip_case():
    assert sorted(ROUND_TRIP) == _registered_layer_classes()


@pytest.mark.parametrize("name", _registered_layer_classes())
def test_layer_config_round_trip(name):
    """Through Keras' own serialisation (registered name and config), as a .keras file stores a layer."""
    assert name in ROUND_TRIP, f"{name}: add it to ROUND_TRIP"
    make, run = ROUND_TRIP[name]
    layer = make()
    rng = np.random.RandomState(9)
    for v in layer.weights:  # random weights (many start at 0 or 1), so that every one of them matters
        v.assign(rng.randn(*v.shape).astype(np.float32))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    assert [v.path for v in clone.weights] == [v.path for v in layer.weights]
    for a, b in zip(clone.weights, layer.weights):
        a.assign(b)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(run(clone)), keras.ops.convert_to_numpy(run(layer)))
