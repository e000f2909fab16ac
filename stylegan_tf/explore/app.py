"""The explorer's page: a Gradio app with one tab per way of looking at the network (`tabs.py`).

Safe by default, in `ExplorerApp.launch` (so a notebook's plain `.launch()` gets them too): bound to 127.0.0.1,
no public link unless asked, analytics off, system fonts only (the page loads nothing from the internet), a
size limit on uploads, errors shown in the page. Each browser has its own state (Gradio's per-session
`gr.State`), and a failing request is one line in its page while the server keeps serving.
"""
import functools
import logging
import os
import threading
import time

# Before Gradio is imported: it reads these at import time (version check, telemetry, Hugging Face's hub).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import gradio as gr
except ImportError:  # pragma: no cover - depends on the install
    raise ImportError("the explorer needs Gradio: pip install -e \".[app]\" (or pip install 'gradio>=6,<7')") \
        from None

from stylegan_tf.explore import tabs
from stylegan_tf.explore.engine import Explorer
from stylegan_tf.explore.uploads import MAX_UPLOAD_BYTES, Outputs

LOG = logging.getLogger("stylegan_tf.explore")
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "Menlo", "monospace"]
# Small networks make small pictures: the page scales them up to the picture's box, with sharp pixels.
CSS = ".explore-image img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"
# Before `launch` returns, Gradio checks that its own page answers, with one 3-second request: on a machine whose
# cores are busy (training beside it, a Colab CPU) that times out and launch fails with a ValueError about share
# links. The explorer makes the same check patiently, for up to this many seconds.
LOCAL_CHECK_S = 60


def user_message(exc):
    """The line a page shows for a failed request: a user mistake as it is, a bug as a short note (its
    traceback goes to the server's log)."""
    from stylegan_tf.cli import USER_ERRORS, one_line
    if isinstance(exc, USER_ERRORS):
        return one_line(exc)
    LOG.error("explore: request failed", exc_info=exc)
    return f"internal error ({type(exc).__name__}: {one_line(exc)[:200]}); the app keeps running"


def shown(fn):
    """Run a callback; any exception becomes one line in the page (gr.Error) instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure must reach the page, and the server live on
            raise gr.Error(user_message(exc), print_exception=False) from None
    return wrapper


class ExplorerApp(gr.Blocks):
    """The explorer's Gradio Blocks; `launch` applies the safe defaults (see the module docstring).

    Attributes: explorer (the `Explorer`), outputs (the download folder), cancels (session -> Event).
    """

    def launch(self, server_name="127.0.0.1", share=False, **kwargs):
        """Gradio's launch with the explorer's defaults; any of them may be overridden by name.

        Example:
            >>> app = build_app("net.keras"); app.launch(server_port=7860)
        """
        from gradio import networking
        defaults = dict(max_file_size=MAX_UPLOAD_BYTES, show_error=True, ssr_mode=False, pwa=False,
                        mcp_server=False, enable_monitoring=False, theme=theme(), css=CSS)
        hasty, networking.url_ok = networking.url_ok, _answers
        try:
            return super().launch(server_name=server_name, share=share, **{**defaults, **kwargs})
        finally:
            networking.url_ok = hasty

    def close(self, verbose=True):
        for event in list(self.cancels.values()):
            event.set()
        out = super().close(verbose=verbose)
        self.outputs.close()
        return out


def _answers(url, within=None):
    """Whether `url` answers (as Gradio's own check: a HEAD request, any success or redirect) within `within`
    seconds (default LOCAL_CHECK_S), asking again every half second."""
    import httpx
    deadline = time.monotonic() + (LOCAL_CHECK_S if within is None else within)
    while True:
        try:
            if httpx.head(url, timeout=10, verify=False).status_code in (200, 301, 302, 303, 307, 308, 401):
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def theme():
    """Gradio's default look with the system's fonts: nothing is fetched from a font server."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def build_app(network, directions=None, labeler=None, title="stylegan_tf explorer"):
    """The explorer for one network, ready to `.launch()` (inline in a notebook cell).

    Args:
        network: a .keras snapshot, an official .pkl, or a loaded network (an object with .Gs, or a Gs).
        directions: optional directions file (`generate.py directions`) for the Edit tab's sliders.
        labeler: optional labeler (`generate.py attributes train`) whose reading of each picture is shown.
        title: the browser tab's title.

    Returns:
        An `ExplorerApp` (a gr.Blocks).

    Example:
        >>> from stylegan_tf.explore import build_app
        >>> build_app("results/00000-sgan-demo-32-1gpu/network-snapshot-000224.keras").launch()
    """
    explorer = network if isinstance(network, Explorer) else Explorer(network, directions, labeler)
    explorer.warm_up()
    with ExplorerApp(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        app.explorer, app.outputs, app.cancels = explorer, Outputs(), {}
        app.cancels_lock = threading.Lock()
        gr.Markdown(f"### {title}\n`{explorer.name}`: {explorer.resolution}×{explorer.resolution}, "
                    f"{explorer.num_styles} style layers, z of {explorer.latent_size} numbers. "
                    "Every control redraws its tab's picture; other tabs redraw when you open them.")
        session = gr.State({})  # per browser: the photo's projected w and noise, the Edit tab's latent
        common = tabs.common_controls(explorer)
        with gr.Tabs():
            tabs.generate_tab(explorer, common)
            tabs.mix_tab(explorer, common)
            tabs.walk_tab(explorer, common)
            edit = tabs.edit_tab(explorer, common, session, app.outputs)
            tabs.photo_tab(app, explorer, session, edit, camera=False)
            tabs.photo_tab(app, explorer, session, edit, camera=True)

        def forget_session(request: gr.Request):
            # A closed page stops its projection (if any) and drops its cancel switch.
            with app.cancels_lock:
                event = app.cancels.pop(getattr(request, "session_hash", None), None)
            if event is not None:
                event.set()

        app.unload(forget_session)
    return app
