"""Mapping-network variants v1..v4 (per-level styles): parameter counts of Art Creation's table, the per-level
dlatent_avg, truncation, style mixing at level boundaries, training, snapshots, train.py. Tiny networks."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as _np

import stylegan_tf
from stylegan_tf.generate import figures
from stylegan_tf.networks import Generator, MappingNetwork, truncate
from stylegan_tf.networks.mapping import count_parameters, make_mapping, mapping_names
from stylegan_tf.networks.mapping_variants import level_boundaries, style_of_row, weight_count
from stylegan_tf.networks.style_mixing import mixing_cutoff

VARIANTS = ["v1", "v2", "v3", "v4"]
# 16x16: 3 resolution levels, 6 style rows; 4 mapping levels > 3 resolution levels exercises a skipped style.
TINY = dict(resolution=16, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=8, mapping_fmaps=8,
            mapping_layers=3)


def _generator(kind, **kw):
    keras.utils.set_random_seed(1)
    G = Generator(**{**TINY, **kw}, mapping=kind)
    G(np.zeros([1, G.latent_size], np.float32))
    # Biases start at zero: give every parameter a value so that each path matters in the checks.
    rng = np.random.RandomState(2)
    for v in G.trainable_weights:
        if np.all(_np(v) == 0):
            v.assign(rng.randn(*v.shape).astype(np.float32) * 0.3)
    return G


@pytest.fixture(scope="module")
def z():
    return np.random.RandomState(4).randn(5, TINY["latent_size"]).astype(np.float32)


# ------------------------------------------------------------------ Art Creation's table
@pytest.mark.parametrize("kind, latent, width, layers, expected", [
    ("fc", 512, 512, 8, 2_097_152), ("fc", 256, 256, 8, 524_288), ("fc", 256, 256, 4, 262_144),
    # v3/v4 rows: the reading of docs/mapping_variants.md (z 512 wide, W = 128) gives Art Creation's numbers exactly.
    ("v3", 512, 128, 5, 655_360), ("v4", 512, 128, 5, 409_600), ("v4", 512, 128, 6, 491_520)])
def test_weight_matrix_counts_equal_the_seed_table(kind, latent, width, layers, expected):
    net = make_mapping(kind, latent_size=latent, dlatent_size=width, mapping_fmaps=width, mapping_layers=layers)
    weights, total = count_parameters(net)
    assert weights == expected == weight_count(kind, latent, width, layers)
    # Biases (and v4's start vector) are one W vector per layer: the full count adds exactly those.
    assert total - weights == width * (layers + (kind == "v4") + (kind == "v3") * layers * (layers - 1) // 2)


@pytest.mark.parametrize("kind", VARIANTS)
def test_formula_matches_the_built_network(kind):
    for latent, width, layers in [(16, 8, 1), (32, 8, 4), (24, 16, 6)]:
        net = make_mapping(kind, latent_size=latent, dlatent_size=width, mapping_fmaps=width, mapping_layers=layers)
        assert count_parameters(net)[0] == weight_count(kind, latent, width, layers)


def test_official_mapping_is_untouched():
    G = Generator(**{**TINY, "dlatent_size": 8, "mapping_layers": 2})
    assert type(G.mapping) is MappingNetwork and G.mapping_kind == "fc" and not G.per_level_styles
    assert tuple(G.dlatent_avg.shape) == (8,)
    assert [v.path for v in G.mapping.weights] == [
        "Dense0/weight", "Dense0_bias/bias", "Dense1/weight", "Dense1_bias/bias"]
    assert G.mixing_boundaries == list(range(1, G.num_styles))
    assert mapping_names()[:5] == ["fc", "v1", "v2", "v3", "v4"]


def test_style_rows_follow_the_levels():
    assert style_of_row(8, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert style_of_row(8, 5).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]       # the last style drives the finest level
    assert style_of_row(8, 2).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert level_boundaries(8, 2) == [4] and level_boundaries(8, 6) == [2, 4, 6]
    with pytest.raises(ValueError, match="dlatent_size must equal"):
        make_mapping("v2", latent_size=16, dlatent_size=16, mapping_fmaps=8)
    with pytest.raises(ValueError, match="config B"):
        Generator(**TINY, mapping="v1", use_styles=False)


# ------------------------------------------------------------------ per-level styles, truncation, mixing
@pytest.mark.parametrize("kind", VARIANTS)
def test_map_latents_gives_per_level_styles(kind, z):
    G = _generator(kind, mapping_layers=4)
    w = G.map_latents(z)
    assert w.shape == (5, 6, 8)
    rows = G.style_levels
    assert rows.tolist() == [1, 1, 2, 2, 3, 3]
    for r in range(1, 6):
        same = rows[r] == rows[r - 1]
        assert np.array_equal(w[:, r], w[:, r - 1]) == same      # equal within a level, different across levels
    styles = _np(G.mapping(z))
    np.testing.assert_array_equal(styles, w)
    img = G.synthesize(w)
    np.testing.assert_allclose(img, G.run(z), atol=1e-5)


@pytest.mark.parametrize("kind", ["v1", "v4"])
def test_truncation_per_level(kind, z):
    G = _generator(kind)
    avg = np.random.RandomState(5).randn(*G.dlatent_avg.shape).astype(np.float32)
    avg = avg[G.style_levels]          # rows of one level share their average, as training makes them
    G.dlatent_avg.assign(avg)
    assert tuple(G.dlatent_avg.shape) == (G.num_styles, 8)
    w = G.map_latents(z)
    np.testing.assert_array_equal(_np(truncate(w, G.dlatent_avg, 1.0)), w)
    np.testing.assert_array_equal(_np(truncate(w, G.dlatent_avg, 0.0)), np.broadcast_to(avg, w.shape))
    cut = _np(truncate(w, G.dlatent_avg, 0.0, 2))
    np.testing.assert_array_equal(cut[:, :2], np.broadcast_to(avg[:2], (5, 2, 8)))
    np.testing.assert_array_equal(cut[:, 2:], w[:, 2:])
    np.testing.assert_array_equal(G.run(z, truncation_psi=1.0), G.run(z))
    np.testing.assert_allclose(G.run(z, truncation_psi=0.0), G.synthesize(np.broadcast_to(avg, w.shape)),
                               atol=1e-5)


def test_dlatent_avg_tracks_each_level(z):
    G = _generator("v2", style_mixing_prob=None)
    G.dlatent_avg.assign(np.zeros(G.dlatent_avg.shape, np.float32))
    G(z, training=True)
    expected = (1 - G.dlatent_avg_beta) * G.map_latents(z).mean(axis=0)
    np.testing.assert_allclose(_np(G.dlatent_avg), expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(expected[0], expected[-1])


def test_training_style_mixing_cuts_only_at_level_boundaries():
    seen = {int(mixing_cutoff(6, 0.0, 1.0, boundaries=[2, 4])) for _ in range(40)}
    assert seen == {2, 4}
    # lod 1: only 4 rows are active, so 2 is the one boundary left; lod 2: none, no mixing (cutoff = rows).
    assert {int(mixing_cutoff(6, 1.0, 1.0, boundaries=[2, 4])) for _ in range(20)} == {2}
    assert int(mixing_cutoff(6, 2.0, 1.0, boundaries=[2, 4])) == 2
    assert int(mixing_cutoff(6, 0.0, 1.0, boundaries=[])) == 6


def test_style_mixing_copies_exactly_the_chosen_levels(z):
    G = _generator("v3", mapping_layers=2)          # rows -> styles [0, 0, 1, 1, 1, 1]
    assert G.mixing_boundaries == [2]
    w_rows, w_cols = G.map_latents(z[:2]), G.map_latents(z[2:5])
    mixed = figures.mix_styles(w_rows, w_cols, [[0], [2, 3]], G.style_levels)
    for r in range(2):
        for c in range(3):
            take = [0, 1] if r == 0 else [2, 3, 4, 5]          # a chosen row brings its whole level
            keep = [i for i in range(6) if i not in take]
            np.testing.assert_array_equal(mixed[r, c][take], w_cols[c][take])
            np.testing.assert_array_equal(mixed[r, c][keep], w_rows[r][keep])
    canvas = figures.style_mixing_figure(G, [1, 2], [3, 4, 5], [[0, 1]], progress=False)
    assert canvas.shape == (16 * 3, 16 * 4, 3)


# ------------------------------------------------------------------ training, snapshots, train.py
# One train_step trace each (10-20 s on a busy 2-core CPU).
@pytest.mark.parametrize("kind", VARIANTS)
def test_variant_trains_and_round_trips_a_snapshot(kind, demo_dataset, tmp_path):
    from stylegan_tf.training import TrainingOptions, training_loop
    opts = TrainingOptions(data=demo_dataset(resolution=16, count=48), outdir=str(tmp_path), resolution=8,
                           lod_initial_resolution=8, minibatch=4, lrate=0.002, tick_kimg=0.008, total_kimg=0.008,
                           progress=False, seed=5, fmap_base=64, fmap_max=16, latent_size=16, mapping=kind,
                           mapping_layers=3, mapping_fmaps=8, loss="wgan")
    res = training_loop(opts)
    G = res.model.G
    assert G.mapping_kind == kind and G.dlatent_size == 8 and res.state.nimg == 16
    assert np.all(np.isfinite(res.history.history["G_loss"]))
    loaded = stylegan_tf.load_network(res.snapshots[-1])
    assert loaded.Gs.mapping_kind == kind and tuple(loaded.Gs.dlatent_avg.shape) == (4, 8)
    np.testing.assert_array_equal(_np(loaded.Gs.dlatent_avg), _np(res.model.Gs.dlatent_avg))
    assert np.any(_np(loaded.Gs.dlatent_avg) != 0)     # the average was trained
    zz = np.random.RandomState(0).randn(3, 16).astype(np.float32)
    np.testing.assert_array_equal(loaded.Gs.run(zz, truncation_psi=0.5), res.model.Gs.run(zz, truncation_psi=0.5))


def test_train_py_dry_run_prints_both_counts(capsys):
    import train
    assert train.main(["--dry-run", "--resolution", "8", "--fmap-base", "64", "--fmap-max", "16", "--mapping",
                       "v3", "--mapping-fmaps", "128", "--mapping-layers", "5", "--latent-size", "512"]) == 0
    out = capsys.readouterr().out
    assert "Mapping network v3: 5 style levels, style width 128 -> 655,360 weight-matrix parameters " \
           "(657,280 with biases)" in out
    assert train.main(["--dry-run", "--mapping", "v9"]) == 2
    assert "--mapping 'v9' is unknown" in capsys.readouterr().err
    assert train.main(["--dry-run", "--mapping", "v2", "--config", "configB"]) == 2
    assert "--config configB has no styles" in capsys.readouterr().err


def test_msg_stylegan_takes_a_variant(z):
    from stylegan_tf.networks.msg import MSGGenerator
    keras.utils.set_random_seed(1)
    G = MSGGenerator(**TINY, mapping="v4")
    out = G(z, training=True)
    assert [o.shape[1] for o in out] == [4, 8, 16] and tuple(G.dlatent_avg.shape) == (6, 8)
    assert G.mapping_kind == "v4" and G.mixing_boundaries == [2, 4]


def test_a_mapping_registered_in_one_place_trains(demo_dataset, tmp_path, capsys):
    """A new mapping is one `register_mapping` call (here, in this file): train.py lists and takes it, and a run
    trains it, snapshots it and names it."""
    import train
    from stylegan_tf.layers import EqualizedDense
    from stylegan_tf.networks.mapping import MAPPINGS, MappingBase, mapping_input, register_mapping
    from stylegan_tf.training import TrainingOptions, training_loop

    @register_mapping("toy", description="one dense layer from z to w (a registry test)")
    @keras.saving.register_keras_serializable(package="test_mapping_variants")
    class ToyMapping(MappingBase):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            z_width = self.latent_size * (2 if self.label_size else 1)
            self.dense = EqualizedDense(self.dlatent_size, z_width, name="Dense")
            self.built = True

        def call(self, z, labels=None):
            w = self.dense(mapping_input(self, z, labels))
            return w if self.dlatent_broadcast is None else keras.ops.repeat(w[:, None], self.dlatent_broadcast, 1)

    try:
        with pytest.raises(SystemExit):
            train.main(["--help"])
        assert "toy: one dense layer from z to w" in " ".join(capsys.readouterr().out.split())
        opts = TrainingOptions(data=demo_dataset(resolution=16, count=48), outdir=str(tmp_path), resolution=8,
                               lod_initial_resolution=8, minibatch=4, tick_kimg=0.008, total_kimg=0.008,
                               progress=False, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=8,
                               mapping="toy")
        res = training_loop(opts)
        assert isinstance(res.model.G.mapping, ToyMapping) and res.model.G.mapping_kind == "toy"
        assert "-maptoy-" in os.path.basename(res.run_dir) and np.all(np.isfinite(res.history.history["G_loss"]))
        loaded = stylegan_tf.load_network(res.snapshots[-1])
        zz = np.random.RandomState(0).randn(3, 16).astype(np.float32)
        assert loaded.Gs.mapping_kind == "toy"
        np.testing.assert_array_equal(loaded.Gs.run(zz), res.model.Gs.run(zz))
    finally:
        MAPPINGS.pop("toy", None)
