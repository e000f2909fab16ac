"""stylegan_tf: the original StyleGAN pipeline on TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

# `metrics/` sits at the top level as in NVIDIA's repository, and installs as `stylegan_tf.metrics`.
PACKAGES = find_packages(include=["stylegan_tf", "stylegan_tf.*"]) + ["stylegan_tf.metrics"]

setup(
    name="stylegan_tf",
    version="0.1.0",
    description="The original StyleGAN (Karras et al. 2019) on TensorFlow 2 / Keras 3, faithful to NVIDIA's numbers.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"stylegan_tf": "stylegan_tf", "stylegan_tf.metrics": "metrics"},
    # Deliberately no TensorFlow here: Colab and GPU machines already have `tensorflow`, and pip must not
    # put `tensorflow-cpu` beside it. Pick the variant with an extra: `[cpu]` or `[gpu]`.
    install_requires=["keras>=3.6", "numpy>=1.24", "pillow>=10", "tqdm>=4.60", "scipy>=1.10"],
    extras_require={
        # TensorBoard: tf.summary's scalar writer lives in it, and TF >= 2.21 no longer installs it.
        "cpu": ["tensorflow-cpu>=2.16", "tensorboard"],
        "gpu": ["tensorflow[and-cuda]>=2.16", "tensorboard"],
        # matplotlib: only `generate.py curves` draws plots, so it is an extra rather than a requirement.
        "plot": ["matplotlib>=3.6"],
        # jax: CI checks that the layers and networks give the same numbers on Keras' JAX backend;
        # matplotlib: so CI runs the `generate.py curves` tests.
        # gradio, playwright: the explorer's API and browser tests (the browser is Debian's chromium, which
        # .ci/run installs; `playwright install` is never needed).
        # pytest-xdist: the suite runs in two worker processes (pyproject.toml): most tests keep one core busy,
        # so two workers nearly halve its time on CI's 2-core machine.
        "test": ["pytest>=7", "pytest-xdist>=3.5", "jax", "matplotlib>=3.6", "gradio>=6,<7", "playwright>=1.40"],
        # The browser explorer (`generate.py explore`, docs/explore.md); one Gradio major: its API moves between them.
        "app": ["gradio>=6,<7"],
        # Keras' JAX backend: training, generation and metrics run on it without TensorFlow (GPU: install
        # jax[cuda12] or jax[cuda13] as JAX's documentation says).
        "jax": ["jax>=0.4.30"],
    },
)
