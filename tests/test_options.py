"""Training options (stylegan_tf/training/options.py): --help from the registries, the checks that refuse bad
values with one line, what a per-level mapping's dlatent size is, and the run directory's name."""
import os
import sys

import pytest

from conftest import REPO, TINY_DCGAN
from stylegan_tf.networks.archs import arch_names
from stylegan_tf.networks.mapping import mapping_names
from stylegan_tf.training import OptionsError, TrainingOptions, resolve_options, train
from stylegan_tf.training.loss import LOSSES
from stylegan_tf.training.options import CONFIGS, fingerprint, run_description, validate

sys.path.insert(0, str(REPO))  # a str: a Path in sys.path breaks multiprocessing's forkserver
import train as train_cli  # noqa: E402


def _one_error(argv, capsys):
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: "), err
    return err[0]


def test_help_lists_every_registered_name(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    helps = {flag: text.split(f"--{flag} NAME ", 1)[1][:600] for flag in ("arch", "config", "loss", "mapping")}
    for flag, names in (("arch", arch_names()), ("config", CONFIGS), ("loss", LOSSES),
                        ("mapping", mapping_names())):
        for name in names:
            assert name in helps[flag], (flag, name)
    assert "ra-hinge" in helps["loss"]


def test_a_per_level_mapping_takes_its_style_width_for_the_dlatent_size(capsys):
    line = _one_error(["--dry-run", "--mapping", "v1", "--dlatent-size", "7"], capsys)
    assert "--dlatent-size 7" in line and "--mapping-fmaps" in line and "give --dlatent-size 64" in line
    # Left out, it is the style width, on the command line, in the demo and built by hand; that is recorded.
    assert resolve_options(mapping="v1", mapping_fmaps=32).dlatent_size == 32
    assert resolve_options(mapping="v2", mapping_fmaps=32, data="x").dlatent_size == 32
    assert TrainingOptions(mapping="v3", mapping_fmaps=8).dlatent_size == 8
    assert TrainingOptions(mapping="fc", mapping_fmaps=8).dlatent_size == 512
    assert not validate(TrainingOptions(mapping="v4", mapping_fmaps=8, dlatent_size=8))
    # A run of a per-level mapping fingerprinted before that is still found by --resume auto.
    old = TrainingOptions(mapping="v4", mapping_fmaps=8)
    old.dlatent_size = 512
    assert fingerprint(old, "data") == fingerprint(TrainingOptions(mapping="v4", mapping_fmaps=8), "data")


def test_outdir_that_is_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    line = _one_error(["--dry-run", "--outdir", str(afile)], capsys)
    assert f"--outdir {afile} is a file" in line
    line = _one_error(["--dry-run", "--outdir", str(afile / "runs")], capsys)
    assert f"--outdir {afile / 'runs'} is inside the file {afile}" in line
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("options, needle", [
    (dict(data=["a", "b"]), "--data must be a path (text), got list"),
    (dict(arch=3), "--arch must be a name (text), got int"),
    (dict(mirror="yes"), "--mirror must be True or False"),
    (dict(metrics=[1]), "--metrics must be a list of metric names"),
])
def test_api_options_of_the_wrong_kind_are_one_line(options, needle, tmp_path):
    with pytest.raises(OptionsError) as e:
        train(outdir=str(tmp_path), dry_run=True, **options)
    assert needle in str(e.value) and len(str(e.value).splitlines()) == 1
    assert not os.listdir(tmp_path)


def test_a_pathlib_path_is_taken_and_recorded_as_text(tmp_path):
    opts = TrainingOptions(outdir=tmp_path, data=tmp_path)
    assert opts.outdir == str(tmp_path) and opts.data == str(tmp_path) and not validate(opts)


def test_run_directory_names_say_what_is_trained():
    dcgan = TrainingOptions.for_arch("dcgan", **TINY_DCGAN)
    assert run_description(dcgan, "faces", 32) == "dcgan-faces-32-1gpu-width4-16"
    assert "fmap" not in run_description(TrainingOptions.for_arch("dcgan", fmap_max=16), "faces", 32)
    assert run_description(TrainingOptions.for_arch("dcgan"), "faces", 32) == "dcgan-faces-32-1gpu"
    assert run_description(TrainingOptions(mapping="v4"), "faces", 32) == "sgan-faces-32-1gpu-mapv4"
    with_class = TrainingOptions(subset_class="1")
    assert run_description(with_class, "art", 64, class_name="impressionism") == \
        "sgan-art-classimpressionism-64-1gpu"
    assert run_description(with_class, "art", 64) == "sgan-art-class1-64-1gpu"


def test_architecture_facts_decide_what_applies(capsys):
    line = _one_error(["--dry-run", "--arch", "dcgan", "--mbstd-group-size", "4"], capsys)
    assert "--mbstd-group-size applies to the discriminators sized by --fmap-base" in line
    line = _one_error(["--dry-run", "--arch", "msggan", "--style-mixing-prob", "0.5"], capsys)
    assert "--arch msggan has no styles (use --arch stylegan, msg-stylegan)" in line
    line = _one_error(["--dry-run", "--arch", "msggan", "--resolution", "4"], capsys)
    assert "--resolution 4: --arch msggan needs 8x8 or more" in line
