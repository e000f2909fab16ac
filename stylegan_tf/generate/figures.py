"""The StyleGAN paper's figures, drawn from any generator: uncurated mosaic (Fig. 2), style mixing
(Fig. 3), noise detail (Fig. 4), noise components (Fig. 5) and the truncation trick (Fig. 8).

Every function takes a generator `Gs` (see `sampling.load_generator`) and returns one uint8 HWC canvas;
layouts follow NVIDIA's `generate_figures.py`, with sizes derived from the network's resolution.
"""
import numpy as np
from PIL import Image

from stylegan_tf.generate import noise as noise_ctl
from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.sampling import class_labels, map_z, run_z, synthesize_w, truncate_w
from stylegan_tf.generate.seeds import band_edges, seeds_to_z


def blank_canvas(height, width, channels, value=255):
    return np.full([height, width, channels], value, np.uint8)


def paste(canvas, tile, y, x):
    tile = np.asarray(tile)
    if tile.ndim == 2:
        tile = tile[:, :, None]
    if tile.shape[2] != canvas.shape[2]:
        tile = np.repeat(tile[:, :, :1], canvas.shape[2], axis=2)
    h = min(tile.shape[0], canvas.shape[0] - y)
    w = min(tile.shape[1], canvas.shape[1] - x)
    canvas[y:y + h, x:x + w] = tile[:h, :w]


def resize(tile, width, height, resample=Image.LANCZOS):
    """Resize one uint8 HWC tile with Pillow (Lanczos = NVIDIA's PIL.Image.ANTIALIAS)."""
    tile = np.asarray(tile)
    if tile.shape[1] == width and tile.shape[0] == height:
        return tile
    gray = tile.shape[2] == 1
    img = Image.fromarray(tile[:, :, 0] if gray else tile)
    out = np.asarray(img.resize((int(width), int(height)), resample))
    return out[:, :, None] if gray else out


def _shape(Gs):
    res = int(Gs.resolution)
    return res, res, int(getattr(Gs, "num_channels", 3))


def _w_of(Gs, seeds, class_idx, truncation_psi=1.0, truncation_cutoff=None):
    z = seeds_to_z(seeds, Gs.latent_size)
    w = map_z(Gs, z, class_labels(Gs, class_idx, len(seeds)))
    return truncate_w(Gs, w, truncation_psi, truncation_cutoff)


# --- Fig. 2 --------------------------------------------------------------------------------------------

PAPER_LODS = (0, 1, 2, 2, 3, 3)


def uncurated_lods(resolution, lods=PAPER_LODS, min_tile=8):
    """The paper's column sizes, each shrink capped so tiles stay at least `min_tile` pixels."""
    max_lod = max(0, int(np.log2(resolution)) - int(np.log2(min_tile)))
    return [min(int(lod), max_lod) for lod in lods]


def uncurated_figure(Gs, seed, rows=3, lods=None, crop=None, class_idx=None, truncation_psi=0.7,
                     truncation_cutoff=8, noise_mode="const", batch_size=8, progress=True):
    """Fig. 2: columns of shrinking tiles; column `lod` holds rows * 2**lod images at 1/2**lod size.
    All latents come from one RandomState(seed).randn(total, z_dim), as in the paper's script.
    `crop` = (x, y, w, h) cuts each image first (e.g. 512x384 cars stored as 512x512)."""
    res, _, channels = _shape(Gs)
    lods = uncurated_lods(res) if lods is None else [int(v) for v in lods]
    if rows < 1 or not lods or min(lods) < 0:
        raise GenerateError("--rows must be >= 1 and --lods non-negative")
    cx, cy, cw, ch = (0, 0, res, res) if crop is None else [int(v) for v in crop]
    if cw < 1 or ch < 1 or cx < 0 or cy < 0 or cx + cw > res or cy + ch > res:
        raise GenerateError(f"--crop {cx},{cy},{cw},{ch} does not fit in the {res}x{res} image")
    if any(cw // 2**lod < 1 or ch // 2**lod < 1 for lod in lods):
        raise GenerateError(f"--lods: a shrink of 2**{max(lods)} leaves no pixels at this resolution")
    total = sum(rows * 2**lod for lod in lods)
    rng = np.random.RandomState(int(seed))
    z = rng.randn(total, int(Gs.latent_size)).astype(np.float32)
    # Random noise continues the same stream, so the seed fixes the whole figure.
    images = run_z(Gs, z, class_labels(Gs, class_idx, total), truncation_psi, truncation_cutoff, noise_mode,
                   batch_size, "uncurated", progress, noise_rng=rng if noise_mode == "random" else None)
    canvas = blank_canvas(ch * rows, sum(cw // 2**lod for lod in lods), channels)
    it = iter(images)
    x = 0
    for lod in lods:
        tw, th = cw // 2**lod, ch // 2**lod
        for row in range(rows * 2**lod):
            paste(canvas, resize(next(it)[cy:cy + ch, cx:cx + cw], tw, th), row * th, x)
        x += tw
    return canvas


# --- Fig. 3 --------------------------------------------------------------------------------------------

def style_mixing_figure(Gs, row_seeds, col_seeds, row_styles, class_idx=None, truncation_psi=1.0,
                        truncation_cutoff=None, noise_mode="const", batch_size=8, progress=True):
    """Fig. 3: column seeds' images along the top, row seeds' images down the left; cell (r, c) is the
    row seed's w with the layers `row_styles[r]` taken from the column seed's w (cycled over rows)."""
    if not row_seeds or not col_seeds:
        raise GenerateError("--row-seeds and --col-seeds need at least one seed each")
    res, _, channels = _shape(Gs)
    w_rows = _w_of(Gs, row_seeds, class_idx, truncation_psi, truncation_cutoff)
    w_cols = _w_of(Gs, col_seeds, class_idx, truncation_psi, truncation_cutoff)
    mixed = mix_styles(w_rows, w_cols, row_styles, getattr(Gs, "style_levels", None))
    images = synthesize_w(Gs, np.concatenate([w_cols, w_rows, mixed.reshape((-1,) + w_rows.shape[1:])]),
                          noise_mode, batch_size, "style mixing", progress,
                          noise_rng=noise_ctl.noise_source(noise_mode, row_seeds[0], Gs.latent_size))
    nc, nr = len(col_seeds), len(row_seeds)
    canvas = blank_canvas(res * (nr + 1), res * (nc + 1), channels)
    for c in range(nc):
        paste(canvas, images[c], 0, res * (c + 1))
    for r in range(nr):
        paste(canvas, images[nc + r], res * (r + 1), 0)
        for c in range(nc):
            paste(canvas, images[nc + nr + r * nc + c], res * (r + 1), res * (c + 1))
    return canvas


def mix_styles(w_rows, w_cols, row_styles, style_levels=None):
    """[rows, cols, layers, dlatent]: w_rows[r] with layers row_styles[r % len] replaced by w_cols[c].

    `style_levels` (`Gs.style_levels`, [layers]) mixes at level boundaries: a chosen layer brings every
    layer of its style level with it, so a per-level mapping's (v1..v4) level is never split between two
    latents. The official mapping's levels are single layers, so its chosen layers are copied as given."""
    w_rows, w_cols = np.asarray(w_rows), np.asarray(w_cols)
    out = np.repeat(w_rows[:, None], len(w_cols), axis=1)
    for r in range(len(w_rows)):
        layers = list(row_styles[r % len(row_styles)])
        if style_levels is not None and layers:
            levels = np.asarray(style_levels)
            layers = [int(i) for i in np.flatnonzero(np.isin(levels, levels[layers]))]
        out[r][:, layers] = w_cols[:, layers]
    return out


# --- Fig. 4 --------------------------------------------------------------------------------------------

# NVIDIA crops a 256x256 patch at (650, 180) of the 1024x1024 face (hair over the ear); the same
# fractions of any resolution.
NOISE_DETAIL_CROP = (650 / 1024, 180 / 1024, 256 / 1024)


def noise_detail_figure(Gs, seeds, samples=100, class_idx=None, crop=NOISE_DETAIL_CROP, batch_size=8,
                        progress=True):
    """Fig. 4: per seed one row: the image; 4 crops (2x nearest zoom) of the same z under different random
    noise; the per-pixel standard deviation over `samples` noise draws (x4, as the paper). No truncation.
    The noise draws come from the seed's stream (`noise.noise_stream`), so the figure is reproducible and
    its first image is what `images --noise-mode random --trunc 1` draws for the seed."""
    if samples < 5:
        raise GenerateError("--samples must be at least 5 (one image and four crops)")
    res, _, channels = _shape(Gs)
    canvas = blank_canvas(res * len(seeds), res * 3, channels)
    x0, y0, size = (int(round(v * res)) for v in crop)
    size = max(size, 1)
    for row, seed in enumerate(seeds):
        w = np.repeat(map_z(Gs, seeds_to_z([seed], Gs.latent_size), class_labels(Gs, class_idx, 1)), samples, axis=0)
        images = synthesize_w(Gs, w, "random", batch_size, f"noise detail {seed}", progress,
                              noise_rng=noise_ctl.noise_stream(seed, Gs.latent_size))
        paste(canvas, images[0], row * res, 0)
        half = res // 2
        for i in range(4):
            patch = images[i + 1][y0:y0 + size, x0:x0 + size]
            paste(canvas, resize(patch, half, half, Image.NEAREST), row * res + (i // 2) * half, res + (i % 2) * half)
        paste(canvas, noise_std_map(images), row * res, res * 2)
    return canvas


def noise_std_map(images):
    """Per-pixel std over samples of the channel-mean uint8 image, times 4, as a uint8 map (paper Fig. 4)."""
    std = np.std(np.mean(np.asarray(images, np.float64), axis=3), axis=0) * 4
    return np.clip(std + 0.5, 0, 255).astype(np.uint8)


# --- Fig. 5 --------------------------------------------------------------------------------------------

def noise_component_layers(num_layers):
    """The four settings of Fig. 5: noise in all layers, none, fine layers only, coarse layers only.
    At 1024^2 fine = layers 8-17 (64^2 and up) and coarse = 0-7, as the paper; scaled for other depths."""
    _, m = band_edges(num_layers)
    return {"all": list(range(num_layers)), "none": [], "fine": list(range(m, num_layers)),
            "coarse": list(range(0, m))}


def noise_components_figure(Gs, seeds, flips=(), class_idx=None, batch_size=8, progress=True):
    """Fig. 5: per seed a 2x2 block of half images: (a) all noise | (b) no noise over (c) fine | (d) coarse.
    Each image uses the stored noise buffers with the other layers' noise zeroed; `flips` lists seed
    positions mirrored left-right (the paper flips one face so the halves show hair)."""
    res, _, channels = _shape(Gs)
    settings = noise_component_layers(int(Gs.num_layers))
    z = seeds_to_z(seeds, Gs.latent_size)
    labels = class_labels(Gs, class_idx, len(seeds))
    results = {}
    for name in ("all", "none", "fine", "coarse"):
        with noise_ctl.noise_in_layers(Gs, settings[name]):
            results[name] = run_z(Gs, z, labels, 1.0, None, "const", batch_size, f"noise {name}", progress)
    for i in flips:
        if not 0 <= int(i) < len(seeds):
            raise GenerateError(f"--flip: position {i} is out of range (0-{len(seeds) - 1})")
        for name in results:
            results[name][int(i)] = results[name][int(i)][:, ::-1]
    half = res // 2
    canvas = blank_canvas(res * 2, res * len(seeds), channels)
    for col in range(len(seeds)):
        x = col * res
        paste(canvas, results["all"][col][:, :half], 0, x)
        paste(canvas, results["none"][col][:, half:], 0, x + half)
        paste(canvas, results["fine"][col][:, :half], res, x)
        paste(canvas, results["coarse"][col][:, half:], res, x + half)
    return canvas


# --- Fig. 8 --------------------------------------------------------------------------------------------

def truncation_figure(Gs, seeds, psis, class_idx=None, noise_mode="const", batch_size=8, progress=True):
    """Fig. 8: one row per seed, one column per psi; psi applies to every layer around Gs.dlatent_avg
    (psi = 0 is the average image, negative psi the 'anti' image)."""
    if not psis:
        raise GenerateError("--psi needs at least one value")
    res, _, channels = _shape(Gs)
    w = _w_of(Gs, seeds, class_idx)
    avg = np.asarray(Gs.dlatent_avg, np.float32)
    psis = np.asarray(psis, np.float32)
    ws = (w[:, None] - avg) * psis[None, :, None, None] + avg
    images = synthesize_w(Gs, ws.reshape((-1,) + w.shape[1:]), noise_mode, batch_size, "truncation", progress,
                          noise_rng=noise_ctl.noise_source(noise_mode, seeds[0], Gs.latent_size))
    canvas = blank_canvas(res * len(seeds), res * len(psis), channels)
    for i, image in enumerate(images):
        r, c = divmod(i, len(psis))
        paste(canvas, image, r * res, c * res)
    return canvas
