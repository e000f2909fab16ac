"""The augmentation pipelines (stylegan_tf/augment): ADA's transforms against stylegan2-ada-pytorch's own
AugmentPipe (tests/fixtures/ada, made by running its code), identity at zero strength, known results for fixed
parameters, gradients through the augmentation, the same batch on TensorFlow and JAX for the same seed, ADA's
p heuristic, DiffAugment, pyramids, and one-line refusals of bad options."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from stylegan_tf import augment as aug
from stylegan_tf.augment import ada, colour, corruption, counter_draws, filtering, geometry

REPO = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "fixtures" / "ada" / "augment_reference.npz"
# Float32 round-off of the resampling chain (two 12-tap filters, bilinear weights) on terms of the size of the
# images: a tolerance relative to the images' magnitude, about 4x what any CPU was seen to need.
GEOM_RTOL = 2e-5
PIXEL_RTOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    if not REFERENCE.is_file():
        pytest.fail(f"{REFERENCE} missing: it is part of the repository (tests/fixtures/ada/make_fixture.py)")
    with np.load(REFERENCE) as data:
        return dict(data)


def _draws(ref, case):
    """ADA's drawn parameters of a fixture case, flattened per sample ([N] or [N, 2])."""
    prefix = f"{case}/draw/"
    n = ref[f"{case}/input"].shape[0]
    return {k[len(prefix):]: ops.convert_to_tensor(v.reshape(n, -1).squeeze(-1) if v.size == n else v.reshape(n, -1))
            for k, v in ref.items() if k.startswith(prefix)}


def _close(ours, want, rtol):
    ours, want = np.asarray(ours), np.asarray(want)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(ours, want, rtol=0, atol=rtol * scale)


def _images(n=4, size=32, channels=3, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


# ------------------------------------------------------------------ against ADA's own code
@pytest.mark.parametrize("case", ["blit", "geom", "bgc"])
def test_geometric_matrix_and_resampling_match_ada(ref, case):
    x = ref[f"{case}/input"]
    g = geometry.inverse_matrix(_draws(ref, case), x.shape[1], x.shape[2], x.shape[0])
    _close(g, ref[f"{case}/G_inv"], 1e-6)
    out = geometry.apply_geometry(ops.convert_to_tensor(x), ops.convert_to_tensor(ref[f"{case}/G_inv"]),
                                  exact_blits=False)
    if case == "bgc":      # geometry then colour, the whole default pipe
        out = colour.apply_colour(out, ops.convert_to_tensor(ref["bgc/C"]))
    _close(out, ref[f"{case}/output"], GEOM_RTOL)


@pytest.mark.parametrize("case", ["color", "color_gray"])
def test_colour_matrix_matches_ada(ref, case):
    x = ref[f"{case}/input"]
    c = colour.colour_matrix(_draws(ref, case), x.shape[0])
    if case == "color":
        _close(c, ref["color/C"], 1e-6)
    _close(colour.apply_colour(ops.convert_to_tensor(x), c), ref[f"{case}/output"], PIXEL_RTOL)


def test_image_filter_matches_ada(ref):
    draws = _draws(ref, "filter")
    gains = filtering.band_gains([draws[f"imgfilter{b}"] for b in range(4)], 4)
    _close(gains, ref["filter/g"], 1e-6)
    _close(filtering.apply_filter(ops.convert_to_tensor(ref["filter/input"]), gains), ref["filter/output"],
           PIXEL_RTOL)


def test_noise_and_cutout_match_ada(ref):
    noisy = corruption.add_noise(ref["noise/input"], _draws(ref, "noise")["noise"], ref["noise/noise_field"])
    _close(noisy, ref["noise/output"], PIXEL_RTOL)
    cut = corruption.apply_cutout(ops.convert_to_tensor(ref["cutout/input"]), ref["cutout/center"].reshape(4, 2),
                                  _draws(ref, "cutout")["cutout"])
    _close(cut, ref["cutout/output"], 0)


def _ks(a, b):
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, points, "right") / a.size
                        - np.searchsorted(b, points, "right") / b.size).max())


def test_drawn_parameters_follow_adas_distributions(ref):
    """Torch's generator cannot be pinned here: ADA's draws at p = 0.5 (1024 samples, every transform on) against
    ours at the same p, per parameter: the share left at identity (a gate's probability), the spread of the rest
    (a range) and the two-sample KS statistic (0.1; its 0.1% critical value for 1024 + 1024 samples is 0.086),
    each several standard errors wide. Our draws are fixed by the seed, so the test is deterministic."""
    ours = aug.get_pipe("bgcfnc").draw(1024, 24, 24, 3, p=0.5, seed=11)
    ours.update({f"imgfilter{b}": ours["imgfilter"][:, b] for b in range(4)})
    keys = sorted(k[len("dist/draw/"):] for k in ref if k.startswith("dist/draw/"))
    assert len(keys) == 19
    for key in keys:
        theirs, mine = ref[f"dist/draw/{key}"].reshape(1024, -1), np.asarray(ours[key]).reshape(1024, -1)
        assert theirs.shape == mine.shape, key
        for column in range(theirs.shape[1]):
            a, b = theirs[:, column], mine[:, column]
            values, counts = np.unique(a, return_counts=True)
            identity = values[counts.argmax()]          # the value a shut gate leaves (0 or 1)
            assert abs(np.mean(a == identity) - np.mean(b == identity)) < 0.07, key   # 3 sigma of the difference
            assert _ks(a, b) < 0.1, key
            spread_a, spread_b = a[a != identity].std(), b[b != identity].std()     # the range, within 15%
            assert spread_a == spread_b == 0 or abs(spread_b / spread_a - 1) < 0.15, key


# ------------------------------------------------------------------ identity and known results
def _at_p0(pipe, x):
    """The pipe's own work at p = 0 (draw and apply: every gate shut), which `augment` skips."""
    return np.asarray(pipe.apply(x, pipe.draw(*x.shape, 0.0, seed=3)))


@pytest.mark.parametrize("transform", ada.TRANSFORMS)
def test_each_transform_is_identity_at_zero_strength(transform):
    x = _images(size=16, seed=1)
    _close(_at_p0(ada.AdaPipe(transform, {transform: 1.0}), x), x, GEOM_RTOL)


def test_every_pipe_is_identity_at_p0_and_changes_images_at_p1():
    """At p = 0 a pipe gives the images back bit for bit (identity matrices copy pixels exactly), except through
    the image filter, whose unit gains sum its bank to a unit impulse up to round-off; `augment` skips the pipe
    there and returns them as they are."""
    x = _images(size=16, seed=2)
    for name in aug.pipe_names():
        pipe = aug.get_pipe(name)
        if "imgfilter" in pipe.multipliers:
            _close(_at_p0(pipe, x), x, PIXEL_RTOL)
        else:
            np.testing.assert_array_equal(_at_p0(pipe, x), x, err_msg=name)
        np.testing.assert_array_equal(np.asarray(aug.augment(x, 0.0, seed=4, spec=name)), x, err_msg=name)
        assert np.abs(np.asarray(aug.augment(x, 1.0, seed=4, spec=name)) - x).max() > 0.05, name


def test_a_traced_step_skips_the_pipe_at_p0():
    """The training step's p is a tensor: one traced function augments at p > 0 and at p = 0 gives the images back
    without running the pipe (its draws and resampling are only in the branch taken when p > 0)."""
    x = _images(size=16, seed=3)
    fn = tf.function(lambda p: aug.augment(x, p, seed=4, spec="bgcfnc"))
    np.testing.assert_array_equal(fn(tf.constant(0.0)).numpy(), x)
    assert np.abs(fn(tf.constant(0.5)).numpy() - x).max() > 0.05
    graph = fn.get_concrete_function(tf.TensorSpec([], tf.float32)).graph
    outer = {op.type for op in graph.get_operations()}
    assert fn.experimental_get_tracing_count() == 1
    assert outer & {"If", "StatelessIf"} and "DepthwiseConv2dNative" not in outer, sorted(outer)


def _geometry(x, **params):
    n = x.shape[0]
    params = {k: ops.convert_to_tensor(np.full((n,) + np.shape(v), v, np.float32)) for k, v in params.items()}
    return np.asarray(geometry.apply_geometry(ops.convert_to_tensor(x), geometry.inverse_matrix(params, 32, 32, n)))


def test_flip_quarter_turn_and_integer_shift_are_exact():
    x = _images(seed=5)
    _close(_geometry(x, xflip=1.0), x[:, :, ::-1], GEOM_RTOL)
    _close(_geometry(x, rotate90=1.0), np.rot90(x, 1, axes=(1, 2)), GEOM_RTOL)
    _close(_geometry(x, rotate90=2.0), x[:, ::-1, ::-1], GEOM_RTOL)
    # xint 3/32 of the width right and -2/32 of the height (up); ADA reflects the image into the uncovered edge.
    shifted = _geometry(x, xint=[3 / 32, -2 / 32])
    padded = np.pad(x, ((0, 0), (2, 2), (3, 3), (0, 0)), mode="reflect")
    _close(shifted, padded[:, 4:36, 0:32], GEOM_RTOL)


def test_colour_matrix_on_known_pixels():
    grey = np.full((1, 2, 2, 3), 0.3, np.float32)
    red = np.zeros((1, 2, 2, 3), np.float32)
    red[..., 0] = 1

    def run(x, **params):
        c = colour.colour_matrix({k: ops.convert_to_tensor([v], "float32") for k, v in params.items()}, 1)
        return np.asarray(colour.apply_colour(ops.convert_to_tensor(x), c))

    _close(run(grey, brightness=0.25), grey + 0.25, 1e-6)
    _close(run(grey, contrast=2.0), grey * 2, 1e-6)
    _close(run(grey, lumaflip=1.0), -grey, 1e-6)            # the grey axis reverses
    _close(run(red, lumaflip=1.0), red - 2 / 3, 1e-6)       # chroma kept, luma mirrored
    _close(run(red, hue=2 * np.pi / 3), np.roll(red, 1, axis=-1), 1e-6)   # a third turn: R -> G
    _close(run(red, saturation=0.0), np.full_like(red, 1 / 3), 1e-6)     # all grey


def test_image_filter_unit_gains_keep_the_image_and_a_high_boost_sharpens():
    x = _images(seed=6)
    _close(filtering.apply_filter(ops.convert_to_tensor(x), ops.ones((4, 4))), x, PIXEL_RTOL)
    assert np.allclose(filtering.FILTER_BANK.sum(axis=0), np.eye(1, filtering.FILTER_BANK.shape[1],
                                                                 filtering.FILTER_BANK.shape[1] // 2), atol=1e-6)
    boosted = np.asarray(filtering.apply_filter(ops.convert_to_tensor(x), ops.convert_to_tensor([[1, 1, 1, 2.0]] * 4)))
    assert np.abs(np.diff(boosted, axis=2)).mean() > np.abs(np.diff(x, axis=2)).mean()


# ------------------------------------------------------------------ seeds, backends, gradients
def test_the_same_seed_gives_the_same_batch_and_another_seed_another():
    x = _images(size=16, seed=7)
    a = np.asarray(aug.augment(x, 0.8, seed=tf.constant([5, 9]), spec="bgcfnc"))
    np.testing.assert_array_equal(a, np.asarray(aug.augment(x, 0.8, seed=tf.constant([5, 9]), spec="bgcfnc")))
    assert np.abs(a - np.asarray(aug.augment(x, 0.8, seed=tf.constant([5, 10]), spec="bgcfnc"))).max() > 0.1


def test_draws_are_uniform_and_normal():
    u = np.asarray(counter_draws.uniform(1, "s", (20000,)))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01 and abs(u.std() - 12 ** -0.5) < 0.01
    z = np.asarray(counter_draws.normal([3, 4], "s", (20000,)))
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.03
    assert np.abs(np.asarray(counter_draws.uniform(1, "t", (100,))) - u[:100]).max() > 0.1   # streams differ


_JAX_SCRIPT = """
import sys
import jax
import numpy as np
from stylegan_tf import augment as aug


@jax.jit          # one compilation: JAX's op-by-op first calls would take far longer
def run(x):
    pyramid = [x[:, ::4, ::4], x[:, ::2, ::2], x]
    return dict(bgcfnc=aug.augment(x, 0.7, seed=np.array([123, 456], np.int32), spec="bgcfnc"),
                diff=aug.augment(x, 1.0, seed=8, spec=aug.DiffAugment()),
                **{f"pyr{i}": level for i, level in enumerate(aug.augment(pyramid, 0.7, seed=9, spec="bgc"))})


np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in run(np.load(sys.argv[1])).items()})
"""


def test_tensorflow_and_jax_give_the_same_batch_for_the_same_seed(tmp_path):
    pytest.importorskip("jax")
    x = _images(seed=8)
    np.save(tmp_path / "x.npy", x)
    hide = tmp_path / "no_tensorflow" / "tensorflow"     # JAX side with TensorFlow unimportable
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('TensorFlow is hidden from this test process')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(hide.parent), str(REPO)]))
    proc = subprocess.run([sys.executable, "-c", _JAX_SCRIPT, str(tmp_path / "x.npy"), str(tmp_path / "jax.npz")],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jax_out = np.load(tmp_path / "jax.npz")
    pyramid = [x[:, ::4, ::4], x[:, ::2, ::2], x]
    tf_out = dict(bgcfnc=aug.augment(x, 0.7, seed=tf.constant([123, 456]), spec="bgcfnc"),
                  diff=aug.augment(x, 1.0, seed=8, spec=aug.DiffAugment()),
                  **{f"pyr{i}": level for i, level in enumerate(aug.augment(pyramid, 0.7, seed=9, spec="bgc"))})
    for key, value in tf_out.items():
        _close(jax_out[key], value, 1e-5)
        assert np.abs(np.asarray(value) - (x if key in ("bgcfnc", "diff", "pyr2") else 0)).max() > 0.05


@pytest.mark.parametrize("spec", ["bgcfnc", aug.DiffAugment()], ids=["bgcfnc", "diffaugment"])
def test_gradients_reach_the_generator_through_the_augmentation(spec):
    import keras
    layer = keras.layers.Dense(16 * 16 * 3)
    z = tf.constant(np.random.RandomState(0).normal(size=(4, 8)).astype(np.float32))
    with tf.GradientTape() as tape:
        fakes = tf.reshape(tf.tanh(layer(z)), (4, 16, 16, 3))
        pyramid = [tf.nn.avg_pool2d(fakes, 2, 2, "VALID"), fakes]
        out = aug.augment(pyramid, 1.0, seed=2, spec=spec)
        loss = tf.reduce_sum(out[0] ** 2) + tf.reduce_sum(out[1] * tf.sin(tf.range(3.0)))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() and np.abs(g.numpy()).max() > 0 for g in grads)


def test_pyramid_levels_get_the_same_transform():
    """Flips, quarter turns and colour commute with the pyramid's box downsampling: every augmented level equals
    the augmented full image box-downsampled."""
    x = _images(n=6, seed=9)
    box = [x.reshape(6, 32 // k, k, 32 // k, k, 3).mean(axis=(2, 4)) for k in (8, 4, 2, 1)]
    pipe = ada.AdaPipe("flips-colour", dict(xflip=1, rotate90=1, brightness=1, contrast=1, lumaflip=1, hue=1,
                                             saturation=1))
    out = aug.augment(box, 1.0, seed=12, spec=pipe)
    full = np.asarray(out[-1])
    for level, k in zip(out, (8, 4, 2, 1)):
        _close(level, full.reshape(6, 32 // k, k, 32 // k, k, 3).mean(axis=(2, 4)), GEOM_RTOL)
    # A general transform: the levels' content still agrees (the same rotation and scale at every size).
    out = aug.augment(box, 1.0, seed=12, spec="bgc")
    low, full = np.asarray(out[-2]), np.asarray(out[-1]).reshape(6, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    assert np.corrcoef(low.ravel(), full.ravel())[0, 1] > 0.8


# ------------------------------------------------------------------ DiffAugment
def test_diffaugment_identity_and_known_results():
    x = _images(seed=10)
    da = aug.DiffAugment()
    n = 4
    identity = dict(brightness=ops.zeros(n), saturation=ops.ones(n), contrast=ops.ones(n),
                    translation=ops.zeros((n, 2)), cutout_start=ops.zeros((n, 2)), cutout_end=ops.zeros((n, 2)))
    _close(da.apply(x, identity), x, 1e-6)
    moved = np.asarray(da.apply(x, dict(identity, translation=ops.convert_to_tensor([[2.0, -1.0]] * n))))
    want = np.zeros_like(x)
    want[:, 1:, :30] = x[:, :31, 2:]            # out[y, x] = in[y - 1, x + 2], zeros shifted in
    _close(moved, want, 1e-6)
    params = da.draw(64, 32, 32, 3, None, seed=5)
    t = np.asarray(params["translation"])
    assert t.min() == -4 and t.max() == 4 and np.all(t == np.round(t))
    cutout = aug.DiffAugment(("cutout",))
    cut = np.asarray(cutout.apply(np.ones((64, 32, 32, 3), np.float32), cutout.draw(64, 32, 32, 3, None, seed=5)))
    assert np.all((cut == 0).sum(axis=(1, 2, 3)) <= 16 * 16 * 3) and (cut == 0).sum(axis=(1, 2, 3)).max() == 768


# ------------------------------------------------------------------ ADA's p heuristic
def test_p_update_is_the_formula():
    assert aug.adjust_p(0.3, 0.9, 0.6, 32, 4, 500) == pytest.approx(0.3 + 32 * 4 / 500_000)
    assert aug.adjust_p(0.3, 0.1, 0.6, 32, 4, 500) == pytest.approx(0.3 - 32 * 4 / 500_000)
    assert aug.adjust_p(0.0, 0.1, 0.6, 32, 4, 500) == 0.0 and aug.adjust_p(1.0, 0.9, 0.6, 32, 4, 500) == 1.0
    ada_p = aug.AdaptiveP(p=0.5, target=0.6, ada_kimg=1, interval=2)
    scores = np.array([0.3, -1.0, 2.0, 4.0])           # signs: mean 0.5 over both minibatches -> below target
    assert ada_p.observe(scores) is None and ada_p.p == 0.5
    assert ada_p.observe(scores) == pytest.approx(0.5)
    assert ada_p.p == pytest.approx(0.5 - 4 * 2 / 1000)


def test_p_rises_on_an_overfitting_d_and_falls_otherwise():
    ada_p = aug.AdaptiveP(p=0.0, target=0.6, ada_kimg=1, interval=4)
    for _ in range(40):
        ada_p.observe(np.full(8, 3.0))        # every real scored positive: r_t = 1
    high = ada_p.p
    assert high == pytest.approx(40 * 8 / 1000)
    for _ in range(40):
        ada_p.observe(np.array([1.0, -1.0] * 4))    # r_t = 0
    assert ada_p.p < high and aug.AdaptiveP.from_dict(json.loads(json.dumps(ada_p.as_dict()))) == ada_p


# ------------------------------------------------------------------ bad options: one line each
@pytest.mark.parametrize("call, flag", [
    (lambda: aug.get_pipe("bgcx"), "--augpipe 'bgcx'"),
    (lambda: aug.check_mode("adaa"), "--augment 'adaa'"),
    (lambda: aug.check_target(1.0), "--target 1.0"),
    (lambda: aug.check_target(0), "--target 0"),
    (lambda: aug.check_p(1.5), "--aug-p 1.5"),
    (lambda: aug.check_p(-0.1), "--aug-p -0.1"),
    (lambda: aug.check_ada_kimg(0), "--ada-kimg 0"),
    (lambda: aug.check_ada_interval(2.5), "--ada-interval 2.5"),
    (lambda: aug.parse_policy("color,zoom"), "--diffaugment 'color,zoom'"),
    (lambda: aug.parse_policy(""), "--diffaugment ''"),
])
def test_bad_options_are_one_line(call, flag):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert message.startswith(flag) and "\n" not in message


def test_good_options_pass():
    assert aug.check_target(0.6) == 0.6 and aug.check_p(0) == 0.0 and aug.check_p(1) == 1.0
    assert aug.from_options("none") is None and aug.from_options("ada").name == "bgc"
    assert aug.from_options("diffaugment", diffaugment="color, cutout").policies == ("color", "cutout")
    assert set(aug.pipe_names()) >= {"blit", "geom", "color", "filter", "noise", "cutout", "bgc", "bgcf", "bgcfn",
                                     "bgcfnc"}
