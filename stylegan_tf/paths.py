"""Where the project keeps what it downloads or builds once: one cache root for every tool.

`cache_root()` is, in this order:

1. `$STYLEGAN_TF_CACHE`, when set;
2. `$XDG_CACHE_HOME/stylegan_tf`, when `XDG_CACHE_HOME` is set;
3. `~/.cache/stylegan_tf`.

Under it: the FID-Inception weights, `metrics/` (cached statistics of real images) and the demo datasets.
Deleting the folder is always safe: everything in it is fetched or rebuilt on the next use.
"""
import os

CACHE_ENV = "STYLEGAN_TF_CACHE"


def cache_root():
    """The project's cache folder (not created here: callers create what they write)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    # XDG before the home default: the metrics used it from the start, so existing caches keep being found.
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stylegan_tf")


def cache_hint():
    """How a user moves the cache, for messages that name a path under it."""
    return f"set ${CACHE_ENV} to keep the cache elsewhere"
