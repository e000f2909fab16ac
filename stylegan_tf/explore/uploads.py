"""Checks on what a browser sends: photo and camera files (size, pixels, format) and the app's own output files.

A photo is read with the dataset tool's image loading (`editing.projection.load_target`: format sniffing, the
pixel limit checked from the header before anything is decoded, EXIF rotation, centre crop), so a decompression
bomb, a truncated file or a web page saved as .jpg is refused with one line before it costs memory.
"""
import os
import shutil
import tempfile

import numpy as np

from stylegan_tf.explore.engine import ExploreError

# 20 MB covers a phone photo at full quality; the page says so. Gradio enforces it on the upload itself (with
# the app's launch defaults) and `check_upload` again, for an app launched with other settings.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_TEXT = "20 MB"
# 50 megapixels: an 8000x6000 photo. Decoding one takes ~150 MB; a bomb that claims more is refused unread.
MAX_PIXELS = 50_000_000


def check_upload(explorer, path):
    """uint8 [R, R, C] of an uploaded photo file, or ExploreError (one line) saying why it cannot be used."""
    if not path:
        raise ExploreError("photo: no file; choose an image (PNG, JPEG, WebP, ...) first")
    try:
        size = os.path.getsize(path)
    except OSError:
        raise ExploreError("photo: the upload did not arrive; try again") from None
    if size > MAX_UPLOAD_BYTES:
        raise ExploreError(f"photo: {size / 1e6:.1f} MB is over the {MAX_UPLOAD_TEXT} upload limit; "
                           "send a smaller file")
    return explorer.load_photo(path, MAX_PIXELS)


class Outputs:
    """The folder of the files the app writes for download (one subfolder per browser session), removed by
    `close`. Gradio copies each returned file into its own cache and serves it from there; nothing else on
    the disk is served."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="stylegan_tf-explore-")
        self._count = 0

    def folder(self, session):
        """A fresh folder for one download of `session` (a session hash: letters and digits only)."""
        self._count += 1
        safe = "".join(c for c in str(session or "anon") if c.isalnum())[:32] or "anon"
        path = os.path.join(self.root, f"{safe}-{self._count:05d}")
        os.makedirs(path)
        return path

    def save(self, session, image, w, noise=None, name="image"):
        """[name.png, w.npy (+ noise.npz)] written to a fresh folder of `session`."""
        from stylegan_tf.image_grid import save_image
        folder = self.folder(session)
        paths = [os.path.join(folder, f"{name}.png"), os.path.join(folder, "w.npy")]
        save_image(np.asarray(image), paths[0])
        np.save(paths[1], np.asarray(w, np.float32))
        if noise is not None:
            paths.append(os.path.join(folder, "noise.npz"))
            np.savez(paths[2], **{f"noise{i}": np.asarray(n) for i, n in enumerate(noise)})
        return paths

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)
