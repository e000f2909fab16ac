"""One function per `generate.py` subcommand: load the network, validate, generate, write files.

Each takes a network path (or an object with .Gs), refuses to overwrite existing outputs unless
`overwrite`, checks every argument before the (slow) generation starts, and returns the written paths."""
import collections
import concurrent.futures
import os

import numpy as np

from stylegan_tf.generate import figures, video, walks
from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.noise import noise_stream
from stylegan_tf.generate.output import check_image_path, check_writable, write_image
from stylegan_tf.generate.sampling import (check_noise_mode, class_labels, for_each_batch, load_generator,
                                          precision_kwargs, run_z)
from stylegan_tf.generate.seeds import parse_layers, seeds_to_z
from stylegan_tf.image_grid import grid_shape, make_grid


def _prepare(network, out, overwrite, class_idx=None, noise_mode="const", figure=None):
    check_noise_mode(noise_mode)
    if out is not None:
        check_image_path(out)
        check_writable([out], overwrite)
    Gs = load_generator(network)
    if figure is not None:
        # A StyleGAN-only figure (styles, noise inputs, W) on another architecture: one line, before any work.
        from stylegan_tf.networks.archs import ArchError, check_figure
        try:
            check_figure(Gs, figure)
        except ArchError as e:
            raise GenerateError(str(e)) from None
    class_labels(Gs, class_idx, 1)  # validates --class against the network before any work
    return Gs


def images(network, seeds, outdir="out", truncation_psi=0.7, truncation_cutoff=8, noise_mode="const",
           class_idx=None, grid=None, batch_size=8, overwrite=False, progress=True, precision="fp32"):
    """One PNG per seed (`seed0000.png`) and, with `grid` = (rows, cols), `grid.png` of them all.
    precision="bf16" synthesizes in bfloat16 (opt-in: faster on CPUs with AMX, slightly different pictures)."""
    if not seeds:
        raise GenerateError("--seeds: no seeds given")
    paths = [os.path.join(outdir, f"seed{s:04d}.png") for s in seeds]
    grid_path = os.path.join(outdir, "grid.png") if grid is not None else None
    if grid is not None:
        check_grid(grid, len(seeds))
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise GenerateError(f"--outdir: {outdir} is a file, not a folder")
    check_writable(paths + ([grid_path] if grid_path else []), overwrite, "--outdir")
    Gs = _prepare(network, None, overwrite, class_idx, noise_mode, figure="images")
    precision_kwargs(Gs, precision)             # an unsupported --precision stops before any work
    labels = class_labels(Gs, class_idx, len(seeds))
    kept = []
    # PNG encoding of large images is as slow as generating them on a GPU: a few writer threads overlap it
    # with the next batch (zlib releases the GIL). At most two batches wait, so memory stays bounded.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    pending = collections.deque()

    def write_batch(z, lb, batch_paths, batch_seeds):
        # Random noise comes from each seed's own stream: an image does not depend on its batch mates.
        rngs = [noise_stream(s, Gs.latent_size) for s in batch_seeds] if noise_mode == "random" else None
        images = run_z(Gs, z, lb, truncation_psi, truncation_cutoff, noise_mode, len(z), progress=False,
                       noise_rng=rngs, precision=precision)
        while len(pending) > 2 * len(z):
            pending.popleft().result()
        pending.extend(pool.submit(write_image, img, p) for img, p in zip(images, batch_paths))
        if grid_path:
            kept.extend(images)

    try:
        z = seeds_to_z(seeds, Gs.latent_size)
        for_each_batch(write_batch, [z, labels, np.array(paths, dtype=object), np.array(seeds)], batch_size,
                       "images", progress)
        while pending:
            pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    written = list(paths)
    if grid_path:
        written.append(write_image(make_grid(np.stack(kept), grid), grid_path))
    return written


def check_grid(grid, count, flag="--grid"):
    """`grid` = (rows, cols) must hold `count` images row by row without a wholly empty row or column: the
    picture's size then follows from the seeds, and a mistyped --grid 100x100 cannot ask for gigabytes."""
    rows, cols = int(grid[0]), int(grid[1])
    if rows < 1 or cols < 1:
        raise GenerateError(f"{flag}: {rows}x{cols} has no tiles; give ROWSxCOLS with both at least 1, e.g. "
                            f"{'x'.join(map(str, grid_shape(count)))}")
    if rows * cols < count:
        raise GenerateError(f"{flag} {rows}x{cols} holds {rows * cols} images but --seeds gives {count}")
    if cols > count or (rows - 1) * cols >= count:
        raise GenerateError(f"{flag} {rows}x{cols} leaves a row or column empty for {count} seed(s); "
                            f"e.g. --grid {'x'.join(map(str, grid_shape(count)))}")
    return rows, cols


def style_mixing(network, row_seeds, col_seeds, styles=("coarse",), out="out/style-mixing.png", class_idx=None,
                 truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", batch_size=8, overwrite=False,
                 progress=True):
    """Paper Fig. 3. `styles`: one layer spec per row (cycled), each a preset (coarse|middle|fine) or
    indices like '0-3'; the single spec 'paper' means the paper's rows: 3 coarse, 2 middle, 1 fine."""
    Gs = _prepare(network, out, overwrite, class_idx, noise_mode, figure="style-mixing")
    specs = list(styles)
    if specs == ["paper"]:
        specs = ["coarse"] * 3 + ["middle"] * 2 + ["fine"]
    row_styles = [parse_layers(s, int(Gs.num_layers)) for s in specs]
    canvas = figures.style_mixing_figure(Gs, row_seeds, col_seeds, row_styles, class_idx, truncation_psi,
                                         truncation_cutoff, noise_mode, batch_size, progress)
    return [write_image(canvas, out)]


def truncation(network, seeds, psis=(1, 0.7, 0.5, 0, -0.5, -1), out="out/truncation.png", class_idx=None,
               noise_mode="const", batch_size=8, overwrite=False, progress=True):
    """Paper Fig. 8."""
    Gs = _prepare(network, out, overwrite, class_idx, noise_mode, figure="truncation")
    return [write_image(figures.truncation_figure(Gs, seeds, list(psis), class_idx, noise_mode, batch_size,
                                                  progress), out)]


def noise_detail(network, seeds, samples=100, out="out/noise-detail.png", class_idx=None, batch_size=8,
                 overwrite=False, progress=True):
    """Paper Fig. 4."""
    Gs = _prepare(network, out, overwrite, class_idx, figure="noise-detail")
    return [write_image(figures.noise_detail_figure(Gs, seeds, samples, class_idx, batch_size=batch_size,
                                                    progress=progress), out)]


def noise_components(network, seeds, flips=(), out="out/noise-components.png", class_idx=None, batch_size=8,
                     overwrite=False, progress=True):
    """Paper Fig. 5."""
    Gs = _prepare(network, out, overwrite, class_idx, figure="noise-components")
    return [write_image(figures.noise_components_figure(Gs, seeds, flips, class_idx, batch_size, progress), out)]


def uncurated(network, seed, rows=3, lods=None, crop=None, out="out/uncurated.png", class_idx=None,
              truncation_psi=0.7, truncation_cutoff=8, noise_mode="const", batch_size=8, overwrite=False,
              progress=True):
    """Paper Fig. 2."""
    Gs = _prepare(network, out, overwrite, class_idx, noise_mode, figure="uncurated")
    return [write_image(figures.uncurated_figure(Gs, seed, rows, lods, crop, class_idx, truncation_psi,
                                                 truncation_cutoff, noise_mode, batch_size, progress), out)]


def interpolate(network, seeds, out="out/interpolate.gif", space="z", frames_per_transition=60, loop=False,
                fps=30, size=None, class_idx=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const",
                batch_size=8, overwrite=False, progress=True):
    """A GIF (or MP4, with ffmpeg) through the seeds: slerp in Z or lerp in W."""
    check_noise_mode(noise_mode)
    video.check_video_path(out)
    check_writable([out], overwrite)
    if fps <= 0:
        raise GenerateError("--fps must be positive")
    if size is not None and size < 1:
        raise GenerateError("--size must be a positive number of pixels")
    if len(seeds) < 2:
        raise GenerateError("--seeds: interpolation needs at least two seeds")
    Gs = _prepare(network, None, overwrite, class_idx, noise_mode, figure="interpolate")
    # W is what a learned mapping makes of z; MSG-GAN's mapping has no layers (w = normalised z) and DCGAN none.
    if space == "w" and int(getattr(getattr(Gs, "mapping", None), "mapping_layers", 0)) < 1:
        raise GenerateError("--space w needs a StyleGAN generator (a mapping network with layers); this network "
                            "has no learned W space: use --space z")
    frames = video.interpolation_frames(Gs, seeds, space, frames_per_transition, loop, class_idx, truncation_psi,
                                        truncation_cutoff, noise_mode, batch_size, progress)
    return [video.write_video(frames, out, fps, size)]


def z_walk(network, seed, dims, values, mode="set", out="out/z-walk.png", class_idx=None, truncation_psi=1.0,
           truncation_cutoff=None, noise_mode="const", batch_size=8, overwrite=False, progress=True):
    Gs = _prepare(network, out, overwrite, class_idx, noise_mode, figure="z-walk")
    return [write_image(walks.z_walk_figure(Gs, seed, dims, list(values), mode, class_idx, truncation_psi,
                                            truncation_cutoff, noise_mode, batch_size, progress), out)]


def w_walk(network, seed, components, values, layers="all", samples=10000, out="out/w-walk.png", class_idx=None,
           truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", batch_size=8, overwrite=False,
           progress=True):
    Gs = _prepare(network, out, overwrite, class_idx, noise_mode, figure="w-walk")
    layer_list = parse_layers(layers, int(Gs.num_layers), "--layers")
    return [write_image(walks.w_walk_figure(Gs, seed, components, list(values), layer_list, samples, class_idx,
                                            truncation_psi, truncation_cutoff, noise_mode, batch_size, progress),
                        out)]


def convert(network, out, overwrite=False):
    """An official .pkl (or any network file we read) -> our .keras format."""
    if not os.fspath(out).endswith(".keras"):
        raise GenerateError(f"--out: {out} must end in .keras")
    check_writable([out], overwrite)
    from stylegan_tf.network_io import open_network, save_network
    save_network(open_network(network, "--network", GenerateError), out)
    return [os.fspath(out)]


__all__ = ["images", "style_mixing", "truncation", "noise_detail", "noise_components", "uncurated",
           "interpolate", "z_walk", "w_walk", "convert"]
