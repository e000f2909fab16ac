"""The explorer's response time: from a control change to the new picture, through the running app.

    python benchmarks/bench_explore.py                      # the demo-sized network and a 256x256 one
    python benchmarks/bench_explore.py --networks demo --repeats 50

For each network (random weights: speed does not depend on them) it builds the app (`build_app`), serves it
on a free 127.0.0.1 port and drives it as a browser would: each request is one control change (ψ moved, a new
seed, another style-mixing preset, the walk's t), timed until the new picture file has arrived, in two ways:
- the page's requests: what the browser's page sends for a control change (Gradio's protocol: POST
  queue/join with the values, the session's server-sent events until the result, GET of the picture), over
  one kept-alive connection;
- `gradio_client`'s `predict`: the same requests plus that client's own waiting (it looks for new messages and
  for cancellation every 50 ms), which is most of its time on a small network.
Gradio times each request on the server (GRADIO_PROFILING): the queue wait, our callback (fn) and Gradio's
postprocessing (the picture to a PNG file in its cache) are printed beside the page's time, whose rest is the
HTTP and event-stream transport. The references from the same run: `Gs.run` for one z in-process (the path
of `generate.py images`) and `Explorer.image` in-process (no HTTP). Gradio's floor comes first: an app that
returns a constant picture. Then a projection through the app: the seconds between its streamed progress
updates (the page asks for one at least every second).

Networks: demo = the demo's generator (training/options.py DEMO_OPTIONS: 32x32, fmap_base 256, fmap_max 64,
latent and dlatent 64, 4 mapping layers); 256 = 256x256 at the default width (fmap_base 8192, fmap_max 512,
latent and dlatent 512, 8 mapping layers). The machine (lscpu's model, cores) and its load average are printed:
other processes on the machine slow every number.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_PROFILING", "1")  # read when Gradio is imported: it times each request's phases
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

NETWORKS = ("demo", "256")


def machine():
    """'<CPU model>, <N> cores' from lscpu (the platform's processor string where lscpu is missing)."""
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        import platform
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(name):
    """(Networks with G, D and Gs, description) of one benchmark network, random weights."""
    from stylegan_tf.networks import Discriminator, Generator, Networks
    from stylegan_tf.training.options import DEMO_OPTIONS
    if name == "demo":
        keys = ("fmap_base", "fmap_max", "latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps")
        kwargs = {k: DEMO_OPTIONS[k] for k in keys}
        resolution = DEMO_OPTIONS["resolution"]
        what = "the demo's network: 32x32, " + ", ".join(f"{k} {v}" for k, v in kwargs.items())
    else:
        kwargs, resolution = {}, 256
        what = "256x256 at the default width (fmap_base 8192, fmap_max 512, latent and dlatent 512)"
    G = Generator(resolution=resolution, **kwargs)
    G(np.zeros([1, G.latent_size], np.float32))
    D = Discriminator(resolution=resolution, num_channels=3, fmap_base=kwargs.get("fmap_base", 8192),
                      fmap_max=kwargs.get("fmap_max", 512))
    D(np.zeros([1, resolution, resolution, 3], np.float32))  # projection's feature term reads D
    return Networks(G, D, G), what


def stats(times):
    """'median X ms, p95 Y ms' of seconds."""
    ms = np.asarray(times) * 1000
    return f"median {np.median(ms):7.1f} ms, p95 {np.percentile(ms, 95):7.1f} ms"


def timed(fn, repeats):
    """Seconds of each of `repeats` calls fn(i)."""
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


class PageRequests:
    """A control change as the page sends it: POST queue/join with the control values, the session's
    server-sent events until this event's result, then GET of each picture file in it."""

    def __init__(self, url, app):
        import httpx
        self.http = httpx.Client(base_url=url, timeout=120)
        self.session = uuid.uuid4().hex[:11]
        self.fn_index = {fn.api_name: i for i, fn in app.fns.items() if fn.api_name}

    def predict(self, *data, api_name):
        join = dict(data=list(data), fn_index=self.fn_index[api_name.lstrip("/")], session_hash=self.session,
                    event_data=None, trigger_id=None)
        event = self.http.post("/gradio_api/queue/join", json=join)
        event.raise_for_status()
        event_id, msg = event.json()["event_id"], {}
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                        break
        if not msg.get("success"):
            raise RuntimeError(f"{api_name}: {msg.get('output')}")
        outputs = msg["output"]["data"]
        for out in outputs:
            if isinstance(out, dict) and out.get("url"):
                self.http.get(out["url"]).raise_for_status()
        return outputs

    def close(self):
        self.http.close()


def server_phases():
    """'queue X, fn Y, postprocess Z ms' (medians) of the requests Gradio timed since the last call."""
    from gradio.profiling import collector
    phases = collector.get_summary().get("phases", {})
    collector._traces.clear()
    if not phases:
        return "(GRADIO_PROFILING off)"
    pick = lambda k: phases.get(k, {}).get("p50", float("nan"))  # noqa: E731
    return f"queue {pick('queue_wait'):.1f}, fn {pick('fn_call'):.1f}, postprocess {pick('postprocess'):.1f} ms"


def bench(name, repeats, projection_steps):
    from gradio_client import Client, handle_file

    from stylegan_tf.explore import build_app
    from stylegan_tf.image_grid import save_image
    nets, what = build(name)
    Gs = nets.Gs
    print(f"\n== {name}: {what}")
    t0 = time.perf_counter()
    app = build_app(nets)
    ex = app.explorer
    print(f"app built (networks traced) in {time.perf_counter() - t0:.1f} s")
    _, url, _ = app.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    page = PageRequests(url, app)
    try:
        rng = np.random.RandomState(0)
        z = rng.randn(1, Gs.latent_size).astype(np.float32)
        Gs.run(z, truncation_psi=0.7, truncation_cutoff=8, batch_size=1)  # traced before timing
        direct = timed(lambda i: Gs.run(rng.randn(1, Gs.latent_size).astype(np.float32), truncation_psi=0.7,
                                        truncation_cutoff=8, batch_size=1), repeats)
        in_process = timed(lambda i: ex.image(i % 7, psi=0.5 + 0.01 * i), repeats)
        client = Client(url, verbose=False)
        psis = [round(-1.0 + (i * 0.05) % 2.5, 2) for i in range(repeats)]
        # Each control sends what the page sends; each client (k) has its own seeds for ψ and the new seeds, so
        # neither finds the other's pictures in the explorer's cache.
        controls = {
            "ψ moved (same seed)": lambda c, i, k: c.predict(2 + k, psis[i], 8, 0, "const", -1,
                                                             api_name="/generate"),
            "seed changed (new seed)": lambda c, i, k: c.predict(1000 * k + i, 0.7, 8, 0, "const", -1,
                                                                 api_name="/generate"),
            "style mixing preset": lambda c, i, k: c.predict(1, 2, ex.preset(("coarse", "middle", "fine")[i % 3]),
                                                             1.0, 8, 0, "const", -1, api_name="/mix"),
            "walk t moved": lambda c, i, k: c.predict(1, 2, (i % 21) / 20, "z", 1.0, 8, 0, "const", -1,
                                                      api_name="/walk"),
        }
        for c in (client, page):  # the first request connects
            c.predict(3, 0.7, 8, 0, "const", -1, api_name="/generate")
        server_phases()
        print(f"reference, Gs.run for one image in-process ({repeats} z): {stats(direct)}")
        print(f"the explorer in-process (Explorer.image, no HTTP):      {stats(in_process)}")
        ref = np.median(direct)
        for label, fn in controls.items():
            t = timed(lambda i: fn(page, i, 1), repeats)
            print(f"app, {label:25s} page's requests: {stats(t)}  ({np.median(t) / ref:5.1f}x Gs.run); "
                  f"server: {server_phases()}")
            t = timed(lambda i: fn(client, i, 2), repeats)
            server_phases()
            print(f"     {'':25s} gradio_client:   {stats(t)}")
        folder = tempfile.mkdtemp(prefix="bench-explore-")
        photo = os.path.join(folder, "photo.png")
        save_image(ex.image(5, psi=0.7), photo)
        job = client.submit(handle_file(photo), projection_steps, "w", api_name="/photo_project")
        arrivals, t0 = [], time.perf_counter()
        for _ in job:
            arrivals.append(time.perf_counter() - t0)
        last = job.outputs()[-1][0]
        gaps = np.diff([0.0] + arrivals)
        print(f"projection, {projection_steps} steps: {len(arrivals)} updates in {arrivals[-1]:.1f} s, seconds "
              f"between updates: median {np.median(gaps):.2f}, max {gaps.max():.2f}; last: {last[:60]}")
        print(f"mapping cache hits: {ex.cache_hits}; {load()}")
    finally:
        page.close()
        app.close(verbose=False)


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def floor(repeats):
    """Gradio's own cost of one request: an app whose endpoint returns a constant 32x32 picture, through the
    page's requests and through gradio_client."""
    import gradio as gr
    from gradio_client import Client
    picture = np.zeros((32, 32, 3), np.uint8)
    with gr.Blocks(analytics_enabled=False) as app:
        number, image = gr.Number(0), gr.Image(format="png", type="numpy")
        number.change(lambda _: picture, number, image, api_name="constant")
    _, url, _ = app.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    page = PageRequests(url, app)
    try:
        client = Client(url, verbose=False)
        for c in (client, page):
            c.predict(0, api_name="/constant")
        server_phases()
        return (timed(lambda i: page.predict(i + 1, api_name="/constant"), repeats), server_phases(),
                timed(lambda i: client.predict(i + 1, api_name="/constant"), repeats))
    finally:
        page.close()
        app.close(verbose=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    p.add_argument("--repeats", type=int, default=30, help="requests per control (default 30)")
    p.add_argument("--projection-steps", type=int, default=20, help="steps of the timed projection (default 20)")
    args = p.parse_args(argv)
    if args.repeats < 2 or not 10 <= args.projection_steps <= 2000:
        p.error("--repeats must be at least 2 and --projection-steps between 10 and 2000 (the page's slider)")
    print(f"machine: {machine()}; {load()}")
    import stylegan_tf.explore.app  # noqa: F401  (the explorer's Gradio settings: no analytics, offline)
    page, server, client = floor(args.repeats)
    print(f"Gradio's floor, a constant 32x32 picture: page's requests: {stats(page)}; server: {server}")
    print(f"                                          gradio_client:   {stats(client)}")
    for name in args.networks:
        bench(name, args.repeats, args.projection_steps)


if __name__ == "__main__":
    main()
