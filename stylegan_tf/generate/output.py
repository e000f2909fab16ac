"""Where generate's pictures go: refuse to clobber existing files unless asked, refuse a folder that cannot be
written before any work, write atomically."""
import json
import os
import tempfile

from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.image_grid import save_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def check_writable(paths, overwrite=False, flag="--out"):
    """Fail before any work if an output exists (and `overwrite` is off), or its folder cannot be written.
    `overwrite` replaces a file (or a link: the link, never what it points to), never a folder. A dangling link
    exists too: it is refused without `overwrite` like any file."""
    folders = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            raise GenerateError(f"{flag}: {path} is a folder, which is never replaced; choose another {flag}")
        if os.path.lexists(path) and not overwrite:
            raise GenerateError(f"{path} already exists; pass --overwrite to replace it or choose another {flag}")
        parent = os.path.dirname(os.path.abspath(path))
        if parent not in folders:
            folders.append(parent)
    for folder in folders:
        check_folder_writable(folder, flag)


def check_ours_beside(path, overwrite, keys, what, flag="--out"):
    """A JSON file a command writes beside the one the user named (an edit's summary, a labeler's scores) is
    replaced by `overwrite` only when it is one of ours, a JSON object holding `keys`: the user never named
    it, so a file of their own that happens to have its name is refused, in one line, before any work.

    Example:
        check_ours_beside("out/edit.json", True, ("amounts", "predicted"), "an edit summary")
    """
    if not overwrite or not os.path.lexists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        ours = isinstance(data, dict) and all(k in data for k in keys)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise GenerateError(f"{path} is not {what}; --overwrite only replaces {what} beside {flag}: move it or "
                            f"choose another {flag}")


def check_folder_writable(folder, flag="--out"):
    """Fail now, not after minutes of generating, if files cannot be created in `folder` or, when it does not
    exist yet, in the nearest folder above it (where it would be created)."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise GenerateError(f"{flag}: {existing} is a file, not a folder")
    # Trying is the only sure test: permission bits do not show a read-only mount, ACLs or a full quota
    # table, and root passes every permission check. The file has no name and vanishes when closed.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise GenerateError(f"{flag}: cannot write in {existing} ({e.strerror or e}); choose a folder you can "
                            "write to") from None


def check_image_path(path, flag="--out"):
    if not os.fspath(path).lower().endswith(IMAGE_EXTS):
        raise GenerateError(f"{flag}: {path} must end in one of {', '.join(IMAGE_EXTS)}")
    return path


def write_image(image, path):
    """uint8 HWC -> file (folders created; temp file then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(image, path)
    return os.fspath(path)
