"""Latents for editing: sampled w, seeds -> w, w files, and the network fingerprint that ties a directions file
to the network it was fitted on."""
import hashlib
import os

import numpy as np

from stylegan_tf.editing.errors import EditError

# Sampled w lie within a few units of zero; a latent beyond this is no w of any network (a wrong file, or a typo
# such as 1e30) and would only make NaN pictures.
W_LIMIT = 1000.0


def network_fingerprint(Gs):
    """A short hex digest of Gs' mapping network, dlatent_avg and shape: a directions file is only meaningful
    for the exact W space it was fitted in. (Synthesis weights are not hashed: the W space is the mapping's.)

    Example:
        fp = network_fingerprint(load_network("net.keras").Gs)
    """
    h = hashlib.sha256()
    h.update(f"{Gs.latent_size},{Gs.dlatent_size},{Gs.num_styles},{Gs.resolution}".encode())
    mapping = getattr(Gs, "mapping", None)
    # Without a mapping network (DCGAN: w is z) the whole generator defines what an edit direction means.
    weights = list(mapping.weights) if mapping is not None else list(Gs.weights)
    avg = getattr(Gs, "dlatent_avg", None)
    for v in weights + ([avg] if avg is not None else []):
        h.update(np.ascontiguousarray(np.asarray(v, np.float32)).tobytes())
    return h.hexdigest()[:16]


def sample_w(Gs, count, seed=0, truncation_psi=1.0, batch_size=256):
    """(z [N, latent], w [N, num_styles, dlatent]) for `count` latents drawn from one RandomState(seed).

    Example:
        z, w = sample_w(Gs, 1000, seed=0)
    """
    z = np.random.RandomState(int(seed)).randn(int(count), Gs.latent_size).astype(np.float32)
    w = Gs.map_latents(z, batch_size=batch_size)
    if truncation_psi is not None and float(truncation_psi) != 1.0 and hasattr(Gs, "dlatent_avg"):
        avg = np.asarray(Gs.dlatent_avg, np.float32)
        w = avg + (w - avg) * float(truncation_psi)
    return z, w


def seeds_to_w(Gs, seeds, truncation_psi=1.0):
    """NVIDIA's seed -> z, then the mapping: w [len(seeds), num_styles, dlatent]."""
    from stylegan_tf.generate.seeds import seeds_to_z
    w = Gs.map_latents(seeds_to_z(seeds, Gs.latent_size))
    if truncation_psi is not None and float(truncation_psi) != 1.0 and hasattr(Gs, "dlatent_avg"):
        avg = np.asarray(Gs.dlatent_avg, np.float32)
        w = avg + (w - avg) * float(truncation_psi)
    return w


def load_w(path, Gs, flag="--w"):
    """A w file (projection's w.npy, any .npy of [D], [L, D] or [N, L, D], or a .npz holding one such array or
    one named `w`) -> [N, num_styles, dlatent]."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EditError(f"{flag}: {path} does not exist")
    try:
        w = np.load(path, allow_pickle=False)
        if not isinstance(w, np.ndarray):  # an .npz archive
            with w as archive:
                w = _npz_w(archive, f"{flag}: {path}")
    except (OSError, ValueError, EOFError) as e:
        raise EditError(f"{flag}: {path} is not a numpy .npy array ({' '.join(str(e).split()) or 'empty'})") \
            from None
    return check_w(w, Gs, f"{flag}: {path}")


def _npz_w(archive, what):
    names = list(archive.files)
    if "w" in names or len(names) == 1:
        return archive["w" if "w" in names else names[0]]
    raise EditError(f"{what} is an .npz holding {', '.join(names) or 'nothing'}; give the w.npy written by "
                    "`generate.py project` (or an .npz with one array, or one named w)")


def check_w(w, Gs, what="w"):
    """Latents of shape [D], [L, D], [N, D] or [N, L, D] -> [N, num_styles, dlatent] float32, or EditError:
    real numbers within +-W_LIMIT, at least one latent."""
    w = np.asarray(w)
    if w.dtype.kind not in "fiu":
        raise EditError(f"{what} holds {w.dtype} values; a w is real numbers (float32)")
    w = w.astype(np.float64)  # checked before the cast: 1e300 must not turn into float32's inf
    if w.size == 0:
        raise EditError(f"{what} holds no latents (shape {list(w.shape)}); give at least one w")
    L, D = Gs.num_styles, Gs.dlatent_size
    if w.ndim == 1 and w.shape == (D,):
        w = np.broadcast_to(w, (1, L, D))
    elif w.ndim == 2 and w.shape == (L, D):
        w = w[None]
    elif w.ndim == 2 and w.shape[1] == D:
        w = np.broadcast_to(w[:, None], (len(w), L, D))
    elif not (w.ndim == 3 and w.shape[1:] == (L, D)):
        raise EditError(f"{what} has shape {list(w.shape)}; this network's w is [{L}, {D}] "
                        f"(or [{D}], or [N, {L}, {D}]); was it projected with another network?")
    if not np.all(np.isfinite(w)):
        raise EditError(f"{what} contains NaN or infinite values")
    if np.abs(w).max() > W_LIMIT:
        raise EditError(f"{what} has values up to {np.abs(w).max():g}; a w lies between {-W_LIMIT:g} and "
                        f"{W_LIMIT:g} (sampled ones within a few units): is this a w file?")
    return np.array(w, np.float32)
