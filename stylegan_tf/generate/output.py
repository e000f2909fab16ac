"""Where generate's pictures go: refuse to clobber existing files unless asked, write atomically."""
import os

from stylegan_tf.generate.seeds import GenerateError
from stylegan_tf.image_grid import save_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def check_writable(paths, overwrite=False, flag="--out"):
    """Fail before any work if an output exists (and `overwrite` is off) or has a bad extension."""
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            raise GenerateError(f"{flag}: {path} is a folder; give a file name")
        if os.path.exists(path) and not overwrite:
            raise GenerateError(f"{path} already exists; pass --overwrite to replace it or choose another {flag}")
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise GenerateError(f"{flag}: {parent} is a file, not a folder")


def check_image_path(path, flag="--out"):
    if not os.fspath(path).lower().endswith(IMAGE_EXTS):
        raise GenerateError(f"{flag}: {path} must end in one of {', '.join(IMAGE_EXTS)}")
    return path


def write_image(image, path):
    """uint8 HWC -> file (folders created; temp file then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(image, path)
    return os.fspath(path)
