"""Interpolation videos through a list of seeds: slerp in Z or lerp in W; GIF (Pillow) or MP4 (ffmpeg)."""
import os
import shutil
import subprocess

import numpy as np
from PIL import Image

from stylegan_tf.atomic import atomic_path
from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.noise import noise_source
from stylegan_tf.generate.sampling import class_labels, map_z, synthesize_w, truncate_w
from stylegan_tf.generate.seeds import seeds_to_z

VIDEO_EXTS = (".gif", ".mp4")


def slerp(a, b, t):
    """Spherical interpolation between latent vectors a and b ([..., D]) at fractions t ([...] or scalar).

    The direction moves along the great circle (as NVIDIA's perceptual-path-length slerp) and the length
    moves linearly, so the path stays in the typical shell of the Gaussian instead of cutting through the
    low-norm middle (which matters when labels are concatenated before the mapping's pixel norm)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    ua, ub = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    d = np.clip(np.sum(ua * ub, axis=-1, keepdims=True), -1.0, 1.0)
    theta = np.arccos(d)
    ortho = ub - d * ua
    no = np.linalg.norm(ortho, axis=-1, keepdims=True)
    # Parallel endpoints: the great circle is undefined and lerp of directions is exact.
    direction = np.where(no > 1e-7, ua * np.cos(t * theta) + ortho / np.maximum(no, 1e-12) * np.sin(t * theta),
                         ua + t * (ub - ua))
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
    return direction * (na + t * (nb - na))


def lerp(a, b, t):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64).reshape(np.shape(t) + (1,) * (a.ndim - 1 if np.ndim(t) else a.ndim))
    return a + t * (b - a)


def keyframe_path(keys, frames_per_transition, loop=False, interpolate=lerp):
    """Frames through the keyframes [K, ...]: `frames_per_transition` frames from each key to the next
    (the next key itself starting the following transition). With `loop`, the path returns to the first
    key and the last frame leads seamlessly into the first; otherwise it ends exactly on the last key."""
    keys = np.asarray(keys, np.float64)
    if len(keys) < 2:
        raise GenerateError("--seeds: interpolation needs at least two seeds")
    if frames_per_transition < 1:
        raise GenerateError("--frames-per-transition must be at least 1")
    if loop:
        keys = np.concatenate([keys, keys[:1]])
    t = np.arange(frames_per_transition) / frames_per_transition
    frames = [interpolate(keys[i][None], keys[i + 1][None], t) for i in range(len(keys) - 1)]
    if not loop:
        frames.append(keys[-1][None])
    return np.concatenate(frames).astype(np.float32)


def interpolation_frames(Gs, seeds, space="z", frames_per_transition=60, loop=False, class_idx=None,
                         truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", batch_size=8,
                         progress=True):
    """uint8 frames [F, H, W, C] through the seeds' latents (slerp in Z, lerp in W). Truncation is applied
    to each frame's w, so every frame is what `images` would draw for that latent."""
    if space not in ("z", "w"):
        raise GenerateError(f"--space: '{space}' must be z or w")
    z = seeds_to_z(seeds, Gs.latent_size)
    if space == "z":
        zs = keyframe_path(z, frames_per_transition, loop, slerp)
        w = map_z(Gs, zs, class_labels(Gs, class_idx, len(zs)))
    else:
        w_keys = map_z(Gs, z, class_labels(Gs, class_idx, len(z)))
        w = keyframe_path(w_keys, frames_per_transition, loop, lerp)
    w = truncate_w(Gs, w, truncation_psi, truncation_cutoff)
    return synthesize_w(Gs, w, noise_mode, batch_size, "frames", progress,
                        noise_rng=noise_source(noise_mode, seeds[0], Gs.latent_size))


def check_video_path(path, flag="--out"):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in VIDEO_EXTS:
        raise GenerateError(f"{flag}: {path} must end in .gif or .mp4")
    if ext == ".mp4" and shutil.which("ffmpeg") is None:
        raise GenerateError(f"{flag}: writing {os.path.basename(path)} needs the ffmpeg program on PATH, and it "
                            "was not found; install ffmpeg (e.g. apt install ffmpeg) or write a .gif instead")
    return path


def write_gif(frames, path, fps=30):
    """uint8 frames [F, H, W, C] -> looping GIF (Pillow), written atomically."""
    frames = np.asarray(frames)
    pil = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    duration = max(int(round(1000.0 / fps)), 20)  # browsers clamp shorter GIF delays
    with atomic_path(path) as tmp:
        pil[0].save(tmp, format="GIF", save_all=True, append_images=pil[1:], duration=duration, loop=0,
                    optimize=False, disposal=1)
    return os.fspath(path)


def write_mp4(frames, path, fps=30, crf=18):
    """uint8 frames -> H.264 MP4 through an external ffmpeg process (raw RGB frames on its stdin)."""
    frames = np.asarray(frames)
    if frames.shape[3] == 1:
        frames = np.repeat(frames, 3, axis=3)
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise GenerateError("writing .mp4 needs the ffmpeg program on PATH; install it or write a .gif")
    n, h, w, _ = frames.shape
    # yuv420p (what players expect) needs even sizes; pad by one pixel when odd.
    pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
    with atomic_path(path) as tmp:
        cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", str(fps), "-i", "-", "-vf", pad, "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-crf", str(crf), "-f", "mp4", tmp]
        proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
        if proc.returncode != 0:
            msg = " ".join(proc.stderr.decode(errors="replace").split())[:200]
            raise GenerateError(f"ffmpeg failed writing {path}: {msg}")
    return os.fspath(path)


def resize_frames(frames, size):
    if size is None or size == frames.shape[1]:
        return frames
    out = []
    for f in frames:
        img = Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f).resize((size, size), Image.LANCZOS)
        a = np.asarray(img)
        out.append(a[:, :, None] if a.ndim == 2 else a)
    return np.stack(out)


def write_video(frames, path, fps=30, size=None):
    frames = resize_frames(np.asarray(frames), size)
    if os.fspath(path).lower().endswith(".mp4"):
        return write_mp4(frames, path, fps)
    return write_gif(frames, path, fps)
