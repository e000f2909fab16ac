"""Training timelapse: a run's fakes*.png grids in kimg order, each stamped with its kimg, as a GIF or MP4.

Training draws the same latents (and labels, and constant noise) into every grid, so consecutive frames
differ only by what the generator learned in between.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.output import check_writable
from stylegan_tf.generate.run_dir import check_run_dir, fakes_grids
from stylegan_tf.generate.video import check_video_path, write_video

DEFAULT_FPS = 10
# Without --size, frames keep the grids' own width up to this: a 1024x1024 run's grid is ~7000 px wide, more
# than any screen, and every frame is held in memory until the writer has them all.
MAX_DEFAULT_WIDTH = 1920
MIN_SIZE = 16
MAX_SIZE = 8192
# Refuse before reading anything when the frames would need more memory than this (the writers take them all).
MEMORY_LIMIT_BYTES = 4 * 2 ** 30


def format_kimg(kimg):
    """12 -> '12', 0.016 -> '0.016', 3.5 -> '3.5': the kimg as the run's file names give it."""
    kimg = round(float(kimg), 3)
    return str(int(kimg)) if kimg == int(kimg) else f"{kimg:.3f}".rstrip("0")


def _font(px):
    # Pillow's built-in font: scalable when Pillow has FreeType, else its fixed bitmap font (no size).
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def stamp_kimg(image, kimg):
    """A copy of the PIL `image` with 'kimg K' in white on a black box in its top-left corner.

    The text height is about 1/25 of the frame width (at least 10 px), so the stamp reads the same at
    any --size.

    Args:
        image: a PIL image (converted to RGB).
        kimg: the training progress to print.

    Returns:
        (stamped RGB PIL image, (x0, y0, x1, y1) box the stamp covers).

    Example:
        >>> img, box = stamp_kimg(Image.new("RGB", (256, 128)), 12)
        >>> box[0], box[1]
        (0, 0)
    """
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    font = _font(max(10, round(image.width / 25)))
    text = f"kimg {format_kimg(kimg)}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 4)
    box = (0, 0, min(image.width, right - left + 2 * pad), min(image.height, bottom - top + 2 * pad))
    draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
    return image, box


def _open(path):
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError) as e:
        raise GenerateError(f"{path}: cannot read this fakes grid ({e}); delete or replace the file") from None


def frame_size(native, size=None):
    """(width, height) of the frames: `size` px wide (default: the grids' own width, at most
    MAX_DEFAULT_WIDTH), the height following the grids' aspect ratio."""
    w, h = native
    width = int(size) if size is not None else min(w, MAX_DEFAULT_WIDTH)
    return width, max(1, int(round(h * width / w)))


def timelapse_frames(grids, size=None, progress=False):
    """uint8 RGB frames [F, H, W, 3], one per grid, each stamped with its kimg.

    Args:
        grids: [(kimg, path)] in the order to show, e.g. `run_dir.fakes_grids(run_dir)`.
        size: frame width in pixels (height keeps the aspect ratio); None: the first grid's width, capped at
            MAX_DEFAULT_WIDTH. A grid of another shape (a run resumed with another --grid) is fitted inside
            the frame with black bars, never stretched.
        progress: show a progress bar.

    Example:
        >>> frames = timelapse_frames(fakes_grids("results/00000-sgan-faces-32-1gpu"), size=512)  # doctest: +SKIP
    """
    if not grids:
        raise GenerateError("no fakes grids to make a timelapse of")
    first = _open(grids[0][1])
    width, height = frame_size(first.size, size)
    need = len(grids) * width * height * 3
    if need > MEMORY_LIMIT_BYTES:
        raise GenerateError(f"{len(grids)} frames of {width}x{height} would need {need / 2 ** 30:.1f} GiB of "
                            "memory; pass a smaller --size")
    frames = np.empty((len(grids), height, width, 3), np.uint8)
    items = grids
    if progress:
        from tqdm import tqdm
        items = tqdm(grids, desc="frames", unit="frame", leave=False)
    for i, (kimg, path) in enumerate(items):
        img = first if i == 0 else _open(path)
        if img.size != (width, height):
            img = ImageOps.pad(img, (width, height), method=Image.LANCZOS, color=(0, 0, 0))
        frames[i] = np.asarray(stamp_kimg(img, kimg)[0])
    return frames


def make_timelapse(run_dir, out="timelapse.gif", fps=DEFAULT_FPS, size=None, overwrite=False, progress=True):
    """Write the training timelapse of `run_dir`: one frame per fakes*.png in kimg order, kimg stamped.

    Args:
        run_dir: a training run folder (any architecture: they share the layout).
        out: .gif (Pillow) or .mp4 (needs the ffmpeg program on PATH).
        fps: frames per second.
        size: frame width in pixels; None: the grids' own width, at most MAX_DEFAULT_WIDTH.
        overwrite: replace an existing `out`.
        progress: show a progress bar while reading the grids.

    Returns:
        [out]

    Example:
        >>> make_timelapse("results/00000-sgan-faces-32-1gpu", "timelapse.gif", fps=5)  # doctest: +SKIP
        ['timelapse.gif']
    """
    check_run_dir(run_dir)
    grids = fakes_grids(run_dir)
    if not grids:
        raise GenerateError(f"RUN_DIR: {run_dir} has no fakes*.png grids yet; training writes one at its start "
                            "and every --image-snap-ticks ticks")
    if not 0 < fps < float("inf"):
        raise GenerateError(f"--fps must be a positive number (got {fps})")
    if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
        raise GenerateError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})")
    check_video_path(out)
    check_writable([out], overwrite)
    frames = timelapse_frames(grids, size, progress)
    return [write_video(frames, out, fps)]
