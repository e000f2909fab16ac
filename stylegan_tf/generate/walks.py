"""Latent walks: move one seed's latent along one axis at a time, one row per axis.

z-walk: one coordinate of z (the experiment users do by hand first: what does dimension 10 do?).
w-walk: one principal component of W, estimated from sampled w = mapping(z); in W the directions are
far better behaved than raw z coordinates (the point of the mapping network, paper Sec. 4)."""
import numpy as np

from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.figures import blank_canvas, paste
from stylegan_tf.generate.noise import noise_source
from stylegan_tf.generate.sampling import class_labels, map_z, synthesize_w, truncate_w
from stylegan_tf.generate.seeds import seeds_to_z

PCA_SEED = 0  # the latents sampled for the W principal components: fixed, so a component index is stable


def _grid(Gs, images, rows, cols):
    res, ch = int(Gs.resolution), int(getattr(Gs, "num_channels", 3))
    canvas = blank_canvas(res * rows, res * cols, ch)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        paste(canvas, image, r * res, c * res)
    return canvas


def z_walk_latents(z, dims, values, mode="set"):
    """[len(dims) * len(values), D]: row d has z[dim] set to (mode 'set') or shifted by (mode 'add') each value."""
    z = np.asarray(z, np.float32)
    out = np.repeat(z[None], len(dims) * len(values), axis=0)
    for r, d in enumerate(dims):
        for c, v in enumerate(values):
            out[r * len(values) + c, d] = v if mode == "set" else z[d] + v
    return out


def z_walk_figure(Gs, seed, dims, values, mode="set", class_idx=None, truncation_psi=1.0, truncation_cutoff=None,
                  noise_mode="const", batch_size=8, progress=True):
    """One row per z dimension in `dims`, one column per value."""
    if mode not in ("set", "add"):
        raise GenerateError(f"--mode: '{mode}' must be set or add")
    bad = [d for d in dims if d >= int(Gs.latent_size)]
    if bad:
        raise GenerateError(f"--dims: dimension {bad[0]} is out of range; z has dimensions 0-{int(Gs.latent_size) - 1}")
    zs = z_walk_latents(seeds_to_z([seed], Gs.latent_size)[0], dims, values, mode)
    w = truncate_w(Gs, map_z(Gs, zs, class_labels(Gs, class_idx, len(zs))), truncation_psi, truncation_cutoff)
    images = synthesize_w(Gs, w, noise_mode, batch_size, "z-walk", progress,
                          noise_rng=noise_source(noise_mode, seed, Gs.latent_size))
    return _grid(Gs, images, len(dims), len(values))


def w_principal_components(Gs, samples=10000, class_idx=None, batch_size=256):
    """(mean [D], components [D, D] as rows, std [D]) of w = mapping(z) over `samples` random z."""
    if samples < 2:
        raise GenerateError("--samples must be at least 2")
    z = np.random.RandomState(PCA_SEED).randn(int(samples), int(Gs.latent_size)).astype(np.float32)
    w = map_z(Gs, z, class_labels(Gs, class_idx, len(z)), batch_size)[:, 0].astype(np.float64)
    mean = w.mean(axis=0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    std = s / np.sqrt(max(len(w) - 1, 1))
    # An SVD's signs are arbitrary; fix them so "+" along a component is the same on every machine.
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    return mean, vt * signs[:, None], std


def w_walk_figure(Gs, seed, components, values, layers=None, samples=10000, class_idx=None,
                  truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", batch_size=8, progress=True):
    """One row per principal component of W; column value v moves the seed's w by v standard deviations
    along it, on `layers` (all when None)."""
    _, pcs, std = w_principal_components(Gs, samples, class_idx)
    bad = [k for k in components if k >= len(pcs)]
    if bad:
        raise GenerateError(f"--components: component {bad[0]} is out of range (0-{len(pcs) - 1}; "
                            f"sampling more than {samples} latents cannot give more than {len(pcs)})")
    w0 = map_z(Gs, seeds_to_z([seed], Gs.latent_size), class_labels(Gs, class_idx, 1))[0]
    sel = list(range(w0.shape[0])) if layers is None else list(layers)
    ws = np.repeat(w0[None], len(components) * len(values), axis=0)
    for r, k in enumerate(components):
        for c, v in enumerate(values):
            ws[r * len(values) + c][sel] += np.float32(v * std[k]) * pcs[k].astype(np.float32)
    ws = truncate_w(Gs, ws, truncation_psi, truncation_cutoff)
    images = synthesize_w(Gs, ws, noise_mode, batch_size, "w-walk", progress,
                          noise_rng=noise_source(noise_mode, seed, Gs.latent_size))
    return _grid(Gs, images, len(components), len(values))
