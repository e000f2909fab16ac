"""`generate.py explore`: serve the explorer for a network until Ctrl-C.

Without --network it opens the newest snapshot under results/ (what `python train.py` left) and says which.
"""
import os
import signal
import time

from stylegan_tf.explore.engine import ExploreError
from stylegan_tf.network_io import SNAPSHOT_RE


def newest_snapshot(results="results"):
    """The most recently written network-snapshot-*.keras in the run folders under `results` (None if none).

    Example:
        >>> newest_snapshot()     # doctest: +SKIP
        'results/00003-sgan-demo-32-1gpu/network-snapshot-000224.keras'
    """
    found = []
    if not os.path.isdir(results):
        return None
    for run in sorted(os.listdir(results)):
        folder = os.path.join(results, run)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            m = SNAPSHOT_RE.match(name)
            if m:
                path = os.path.join(folder, name)
                # Newest by time written; a run's own order (kimg, then the -N repeat) breaks a tie.
                found.append((os.path.getmtime(path), int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 1),
                              path))
    return max(found)[-1] if found else None


def explore(network=None, directions=None, labeler=None, host="127.0.0.1", port=7860, share=False,
            results="results", block=True):
    """Serve the explorer (see `build_app`) on host:port until Ctrl-C; returns [] (it writes no files).

    Args:
        network: a .keras snapshot or official .pkl; None: the newest snapshot under `results`.
        directions, labeler: optional files for the Edit tab (docs/editing.md).
        host: the interface to listen on; 127.0.0.1 (only this machine) unless asked.
        port: the TCP port.
        share: also make a public gradio.live link (anyone with it can use the app).
        block: wait for Ctrl-C (False: return the launched app, for tests).
    """
    if network is None:
        network = newest_snapshot(results)
        if network is None:
            raise ExploreError(f"--network: no network given and no snapshot under {results}/; train one with "
                               "`python train.py` or pass --network FILE")
        print(f"explore: the newest snapshot under {results}/: {network}")
    if not 1 <= int(port) <= 65535:
        raise ExploreError(f"--port must be between 1 and 65535 (got {port})")
    from stylegan_tf.explore.app import build_app
    app = build_app(network, directions, labeler)
    if share:
        print("explore: --share: the app becomes public: anyone with the gradio.live link can use it")
    try:
        _, local, public = app.launch(server_name=host, server_port=int(port), share=bool(share), quiet=True,
                                      prevent_thread_lock=True)
    except OSError as e:
        app.outputs.close()
        raise ExploreError(f"--port {port}: cannot listen on {host}:{port} ({e}); pick another with --port") \
            from None
    opened = f"explore: open {local} (Ctrl-C stops it)" + (f"; public link {public}" if public else "")
    if not block:
        print(opened, flush=True)
        return app
    # Gradio's start-up leaves SIGINT at the system default (the process would die without a word): Ctrl-C
    # is Python's KeyboardInterrupt again, so the server closes and says so; set before the line that invites
    # the Ctrl-C, and that line inside the `try`, so that a Ctrl-C at any moment stops it cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        print(opened, flush=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        app.close(verbose=False)
        print("explore: stopped")
    return []
