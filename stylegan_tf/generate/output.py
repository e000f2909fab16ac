"""Where generate's pictures go: refuse to clobber existing files unless asked, write atomically."""
import os

from stylegan_tf.generate.seeds import GenerateError
from stylegan_tf.image_grid import save_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# Read once at import: os.umask can only be read by setting it, which must not race the writer threads.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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


def public_mode(path):
    """Give a finished file the usual permissions: atomic_path's temp files are created 0600 (mkstemp),
    which would make every picture private to its owner."""
    os.chmod(path, 0o666 & ~_UMASK)
    return os.fspath(path)


def write_image(image, path):
    """uint8 HWC -> file (folders created; temp file then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(image, path)
    return public_mode(path)
