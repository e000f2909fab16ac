"""Decode, clean and resize one user image with Pillow and numpy (this runs in worker processes: no TF).

Every failure becomes a `SkipImage` with a short kind and a reason, never a crash. Only raster formats
whose Pillow plugins are plain decoders are enabled: EPS/PDF-like plugins would run external programs
on user files.
"""
import contextlib
import hashlib
import warnings

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from stylegan_tf.data.pyramid import build_pyramid

SAFE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "PPM", "TGA", "ICO")
TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "stretch")
RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold


class SkipImage(Exception):
    """This file is not used; `kind` groups the reasons in the summary and skipped.json."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def parse_color(text, flag):
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not a colour; use a name (white) or #rrggbb") from None


@contextlib.contextmanager
def _own_pixel_limit():
    # We check our own --max-pixels before decoding; Pillow's global limit would otherwise raise first
    # (or warn) with a message that names neither the file nor the flag.
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _sniff(head):
    low = head.lstrip()[:64].lower()
    if low.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in head[:512].lower():
        return SkipImage("html-page", "an HTML/XML page saved with an image name (a failed download?)")
    if low.startswith((b"{", b"[")):
        return SkipImage("not-an-image", "text/JSON content, not an image")
    return SkipImage("not-an-image", "content is not an image format we read")


def _formats():
    # Pillow versions differ in which names exist (MPO is opened through JPEG in recent ones).
    Image.init()
    return [f for f in SAFE_FORMATS if f in Image.OPEN]


def _open(f, head, max_pixels):
    try:
        im = Image.open(f, formats=_formats())
    except UnidentifiedImageError:
        raise _sniff(head) from None
    except Exception as e:  # noqa: BLE001 - any decoder failure on a user file is a skip
        raise SkipImage("corrupt", f"unreadable header ({type(e).__name__}: {e})") from None
    w, h = im.size
    if w < 1 or h < 1:
        raise SkipImage("corrupt", f"invalid size {w}x{h}")
    if max_pixels and w * h > max_pixels:
        raise SkipImage("too-many-pixels", f"{w}x{h} = {w * h:,} pixels > --max-pixels {max_pixels:,} "
                        "(a decompression bomb, or raise --max-pixels)")
    return im


@contextlib.contextmanager
def _opened(path, max_pixels):
    """(file, Pillow image with only its header read) under our own pixel limit; SkipImage for an empty
    file or content that is not an image we read. OSError (unreadable file) passes through."""
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head:
            raise SkipImage("empty", "empty file (0 bytes)")
        f.seek(0)
        with _own_pixel_limit():
            yield f, _open(f, head, max_pixels)


def probe(path, max_pixels=DEFAULT_MAX_PIXELS, want_hash=False):
    """Cheap first look (header only): (width, height, sha1 of the bytes or None); raises SkipImage."""
    try:
        with _opened(path, max_pixels) as (f, im):
            w, h = im.size
            digest = None
            if want_hash:
                f.seek(0)
                digest = hashlib.sha1(f.read()).hexdigest()
            return w, h, digest
    except SkipImage:
        raise
    except OSError as e:
        raise SkipImage("unreadable", f"cannot read the file ({e.strerror or e})") from None


def _to_mode(im, channels, alpha_bg):
    mode = im.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16/32-bit gray: Pillow's convert("L") clips at 255 instead of scaling, so scale here.
        a = np.asarray(im, dtype=np.float64)
        top = a.max() if a.size else 0
        if mode == "F" and top <= 1.0:
            a = a * 255.0
        elif top > 255:
            a = a * (255.0 / 65535.0) if top <= 65535 else a * (255.0 / top)
        im = Image.fromarray(np.rint(a).clip(0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("L", "RGB", "RGBA", "LA"):
        pass
    elif mode in ("PA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif im.mode != "RGB":
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    if im.mode in ("RGBA", "LA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, tuple(alpha_bg) + (255,))
        im = Image.alpha_composite(bg, rgba).convert("RGB")
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def _source_side(w, h, opts):
    """The source length that maps onto the output's `resolution` pixels (for the no-upscale rule)."""
    t = opts["transform"]
    if t == "pad":
        return max(w, h)
    if t == "center-crop-wide":
        return min(w, h * opts["wide_aspect"])
    return min(w, h)


def check_size(w, h, opts):
    side = _source_side(w, h, opts)
    r = opts["resolution"]
    if side < r and not opts["allow_upscale"] and side < opts["min_size"]:
        raise SkipImage("too-small", f"{w}x{h} is below {opts['min_size']} px for a {r}x{r} {opts['transform']} "
                        "(use --allow-upscale or a smaller --min-size/--resolution)")


def _resize(im, opts):
    r, t = opts["resolution"], opts["transform"]
    rs = RESAMPLE[opts["resample"]]
    w, h = im.size
    fill = tuple(opts["pad_color"]) if im.mode == "RGB" else int(round(
        np.dot(opts["pad_color"], [0.299, 0.587, 0.114])))
    if t == "center-crop":
        s = min(w, h)
        return im.resize((r, r), rs, box=((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2))
    if t == "stretch":
        return im.resize((r, r), rs)
    if t == "pad":
        scale = r / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = Image.new(im.mode, (r, r), fill)
        canvas.paste(im.resize((nw, nh), rs), ((r - nw) // 2, (r - nh) // 2))
        return canvas
    # center-crop-wide: crop to the wide aspect, scale to the full width, letterbox (like the official
    # 512x384 cars in 512x512 frames).
    aspect = opts["wide_aspect"]
    cw, ch = (h * aspect, h) if w / h > aspect else (w, w / aspect)
    rh = max(1, int(round(r / aspect)))
    inner = im.resize((r, rh), rs, box=((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2))
    canvas = Image.new(im.mode, (r, r), fill)
    canvas.paste(inner, (0, (r - rh) // 2))
    return canvas


def load_image(path, opts):
    """The cleaned image as uint8 [C, R, R] (CHW, like the records), or SkipImage."""
    try:
        with _opened(path, opts["max_pixels"]) as (_, im):
            w, h = im.size
            if opts["transform"] != "center-crop-wide":
                check_size(w, h, opts)  # the sides that matter do not change with EXIF rotation
            if im.format in ("JPEG", "MPO") and opts["transform"] != "center-crop-wide":
                # Let libjpeg decode at 1/2..1/8 scale while still keeping >= 2x the output size:
                # much faster on big photos, and Lanczos from 2x is as good as from full size.
                need = 2 * opts["resolution"] / _source_side(w, h, opts)
                if need < 0.5:
                    im.draft(im.mode, (int(np.ceil(w * need)), int(np.ceil(h * need))))
            im.load()
            with contextlib.suppress(Exception):  # a broken EXIF block only loses the rotation
                im = ImageOps.exif_transpose(im)
            if opts["transform"] == "center-crop-wide":
                check_size(*im.size, opts)
            im = _to_mode(im, opts["channels"], opts["alpha_bg"])
            im = _resize(im, opts)
    except SkipImage:
        raise
    except MemoryError:
        raise SkipImage("too-many-pixels", "ran out of memory decoding it (lower --max-pixels)") from None
    except OSError as e:
        text = str(e)
        kind = "truncated" if "truncated" in text.lower() else "corrupt"
        raise SkipImage(kind, f"cannot decode ({text})") from None
    except Exception as e:  # noqa: BLE001 - decoders raise many types on hostile input
        raise SkipImage("corrupt", f"cannot decode ({type(e).__name__}: {e})") from None
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def probe_task(args):
    """Worker entry: (index, path, max_pixels, want_hash) -> (index, (w, h, hash) or None, SkipImage or None)."""
    index, path, max_pixels, want_hash = args
    try:
        return index, probe(path, max_pixels, want_hash), None
    except SkipImage as e:
        return index, None, (e.kind, e.reason)


def load_task(args):
    """Worker entry: (index, path, opts) -> (index, pyramid or None, (kind, reason) or None)."""
    index, path, opts = args
    try:
        return index, build_pyramid(np.ascontiguousarray(load_image(path, opts))), None
    except SkipImage as e:
        return index, None, (e.kind, e.reason)
