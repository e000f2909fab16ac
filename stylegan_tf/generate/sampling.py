"""Loading a generator for inference and running it in batches (numpy in, numpy out).

The noise modes, batching and truncation are the networks' own (layers.noise, networks.inference,
networks.truncation); they are imported where used because importing them loads Keras, and the generate
package stays importable without it (argument parsing, --help).
"""
import inspect
import os

import numpy as np

from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.image_grid import to_uint8


def load_generator(network):
    """`network`: a path (our .keras or an official .pkl) or an object with `.Gs`; returns Gs.

    Any failure to read the file becomes one GenerateError line naming the file (`network_io.open_network`)."""
    if hasattr(network, "Gs"):
        return network.Gs
    if hasattr(network, "run") and hasattr(network, "synthesize"):
        return network
    path = os.fspath(network)
    key = _cache_key(path)
    if key is not None and key in _CACHE:
        return _CACHE[key]
    from stylegan_tf.network_io import open_network
    nets = open_network(path, "--network", GenerateError)
    Gs = getattr(nets, "Gs", None)
    if Gs is None or not hasattr(Gs, "run"):
        raise GenerateError(f"--network: {path} holds no generator (Gs)")
    # Keep the last network: a notebook drawing several figures from one file loads (and traces) it once.
    _CACHE.clear()
    _CACHE[key] = Gs
    return Gs


_CACHE = {}


def _cache_key(path):
    """The file's identity and version; None for a missing file (open_network then says so)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), stat.st_mtime_ns, stat.st_size


def class_labels(Gs, class_idx, count, flag="--class"):
    """One-hot labels [count, label_size] for a conditional network, None for an unconditional one."""
    label_size = int(getattr(Gs, "label_size", 0) or 0)
    if label_size == 0:
        if class_idx is not None:
            raise GenerateError(f"{flag}: this network is unconditional (no classes); drop {flag}")
        return None
    if class_idx is None:
        raise GenerateError(f"{flag}: this network is conditional with {label_size} classes; "
                            f"pass {flag} N with N in 0-{label_size - 1}")
    if not 0 <= int(class_idx) < label_size:
        raise GenerateError(f"{flag}: class {class_idx} is out of range; this network has classes 0-{label_size - 1}")
    labels = np.zeros([count, label_size], np.float32)
    labels[:, int(class_idx)] = 1.0
    return labels


def check_noise_mode(noise_mode):
    from stylegan_tf.layers.noise import NOISE_MODES
    if noise_mode not in NOISE_MODES:
        raise GenerateError(f"--noise-mode: '{noise_mode}' is not one of {', '.join(NOISE_MODES)}")
    return noise_mode


def _progress(total, desc, progress):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="img", leave=False)


def for_each_batch(fn, inputs, batch_size, desc, progress):
    """`networks.inference.batched` with a progress bar: fn on aligned slices of the arrays in `inputs` (None
    entries pass through); what it returns concatenated (None when it returns nothing)."""
    from stylegan_tf.networks.inference import batched
    if int(batch_size) < 1:
        raise GenerateError(f"--batch must be at least 1 (got {batch_size})")
    n = len(next(x for x in inputs if x is not None))
    bar = _progress(n, desc, progress and n > int(batch_size))
    try:
        return batched(fn, inputs, batch_size, on_batch=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()


def _finish(images, as_uint8):
    images = np.asarray(images)
    # Converting per batch keeps memory at 1 byte per pixel for long jobs (100 samples at 1024^2).
    return to_uint8(images) if as_uint8 else images.astype(np.float32)


def precision_kwargs(Gs, precision):
    """The keyword that asks `Gs` for `precision` ({} for the default fp32); GenerateError naming --precision
    if the network's inference API has no precision choice (architectures other than StyleGAN)."""
    from stylegan_tf.networks.inference import PRECISIONS
    if precision not in PRECISIONS:
        raise GenerateError(f"--precision: '{precision}' is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return {}
    if "precision" not in inspect.signature(Gs.run).parameters:
        raise GenerateError(f"--precision {precision}: this network ({type(Gs).__name__}) only runs in fp32")
    return {"precision": precision}


def run_z(Gs, z, labels=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const",
          batch_size=8, desc="generating", progress=True, as_uint8=True, noise_rng=None, precision="fp32"):
    """z [N, latent] -> images [N, H, W, C]: uint8, or float in [-1, 1] (unclipped) with as_uint8=False.

    noise_mode="random" with `noise_rng` (a RandomState, or a list of one per image) makes the noise
    reproducible (see `noise.synthesize_random_noise`); without it the generator's own RNG is used.
    precision="bf16" computes the synthesis in bfloat16 (opt-in: faster on AMX CPUs, changes the images)."""
    kw = precision_kwargs(Gs, precision)
    if noise_mode == "random" and noise_rng is not None:
        w = map_z(Gs, z, labels)
        w = truncate_w(Gs, w, truncation_psi, truncation_cutoff)
        return synthesize_w(Gs, w, noise_mode, batch_size, desc, progress, as_uint8, noise_rng, precision)
    return for_each_batch(lambda zb, lb: _finish(Gs.run(zb, lb, truncation_psi=truncation_psi,
                                                        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
                                                        **kw),
                                                 as_uint8),
                          [np.asarray(z, np.float32), labels], batch_size, desc, progress)


def map_z(Gs, z, labels=None, batch_size=64):
    """z [N, latent] -> w [N, num_layers, dlatent] (no truncation)."""
    return for_each_batch(lambda zb, lb: Gs.map_latents(zb, lb), [np.asarray(z, np.float32), labels],
                          batch_size, "mapping", False)


def synthesize_w(Gs, w, noise_mode="const", batch_size=8, desc="synthesizing", progress=True, as_uint8=True,
                 noise_rng=None, precision="fp32"):
    """w [N, num_layers, dlatent] -> images [N, H, W, C] (uint8, or float with as_uint8=False)."""
    w = np.asarray(w, np.float32)
    kw = precision_kwargs(Gs, precision)
    finish = lambda images: _finish(images, as_uint8)  # noqa: E731
    if noise_mode == "random" and noise_rng is not None:
        from stylegan_tf.generate.noise import synthesize_random_noise
        if isinstance(noise_rng, (list, tuple)):
            streams = np.empty(len(noise_rng), dtype=object)
            streams[:] = noise_rng
            return for_each_batch(lambda wb, rb: synthesize_random_noise(Gs, wb, list(rb), finish, **kw),
                                  [w, streams], batch_size, desc, progress)
        return for_each_batch(lambda wb: synthesize_random_noise(Gs, wb, noise_rng, finish, **kw), [w],
                              batch_size, desc, progress)
    return for_each_batch(lambda wb: finish(Gs.synthesize(wb, noise_mode=noise_mode, **kw)), [w], batch_size,
                          desc, progress)


def truncate_w(Gs, w, psi, cutoff=None):
    """numpy dlatents truncated towards Gs' average on the layers below `cutoff` (all when None), as the
    generator does it; psi None or 1 leaves them as they are."""
    from keras import ops

    from stylegan_tf.networks.truncation import truncate
    w = np.asarray(w, np.float32)
    if psi is None or float(psi) == 1.0:
        return w
    return ops.convert_to_numpy(truncate(w, np.asarray(Gs.dlatent_avg, np.float32), float(psi), cutoff))
