"""LPIPS for projection: `stylegan_tf.metrics.lpips` (its one home, shared with perceptual path length), raising
`EditError` so that generate.py's editing commands report bad `--lpips` files as one line."""
from stylegan_tf.editing.errors import EditError
from stylegan_tf.metrics import lpips as _metrics_lpips

SCALE, SHIFT, STAGES = _metrics_lpips.SCALE, _metrics_lpips.SHIFT, _metrics_lpips.STAGES


class LPIPS(_metrics_lpips.LPIPS):
    """`metrics.lpips.LPIPS` whose weight errors are `EditError`s.

    Example:
        lp = LPIPS.from_files("vgg16-397923af.pth,vgg.pth")
        d = lp.distance(images_a, images_b)   # NHWC in [-1, 1] -> [N]
    """

    error = EditError
