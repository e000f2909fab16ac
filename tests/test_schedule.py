"""The progressive-growing schedule against the official StyleGAN FFHQ presets (training_schedule + train.py)."""
import math

import pytest

from stylegan_tf.training.schedule import plan_phase, preset


def official_lod(kimg, res_log2=10, init_res=8, train_kimg=600.0, trans_kimg=600.0):
    # The formula of official-stylegan.md §5, written out independently of the code under test.
    phase = math.floor(kimg / (train_kimg + trans_kimg))
    lod = res_log2 - math.log2(init_res) - phase - max(kimg - phase * (train_kimg + trans_kimg) - train_kimg, 0) / trans_kimg
    return max(lod, 0.0)


# kimg -> (lod, resolution, minibatch 8gpu, minibatch 1gpu, lr)
FFHQ_TABLE = [
    (0, 7.0, 8, 256, 128, 0.001),
    (600, 7.0, 8, 256, 128, 0.001),
    (900, 6.5, 16, 128, 128, 0.001),          # the fade runs at the new level's minibatch and lr
    (1200, 6.0, 16, 128, 128, 0.001),
    (2100, 5.5, 32, 64, 64, 0.001),
    (3300, 4.5, 64, 32, 32, 0.001),
    (4500, 3.5, 128, 32, 16, 0.0015),
    (5700, 2.5, 256, 32, 8, 0.002),
    (6900, 1.5, 512, 32, 4, 0.003),
    (8100, 0.5, 1024, 32, 4, 0.003),
    (8400, 0.0, 1024, 32, 4, 0.003),
    (25000, 0.0, 1024, 32, 4, 0.003),
]


@pytest.mark.parametrize("kimg,lod,res,mb8,mb1,lr", FFHQ_TABLE)
def test_ffhq_presets_match_official_table(kimg, lod, res, mb8, mb1, lr):
    for name, mb in (("8gpu", mb8), ("1gpu", mb1)):
        s = preset(name, 1024, num_gpus=8 if name == "8gpu" else 1).at(kimg)
        assert s.lod == pytest.approx(lod) == pytest.approx(official_lod(kimg))
        assert s.resolution == res and s.level == math.floor(lod)
        assert s.minibatch == mb, name
        assert s.G_lrate == pytest.approx(lr) and s.D_lrate == pytest.approx(lr)


def test_tick_lengths_and_gpu_divisibility():
    s = preset("1gpu", 1024)
    assert s.at(0).tick_kimg == 140 and s.at(9000).tick_kimg == 20
    # minibatch is made divisible by the GPU count, as `minibatch -= minibatch % num_gpus`
    assert preset("8gpu", 1024, num_gpus=3).at(0).minibatch == 255


def test_phase_plan_reads_schedule_every_group():
    sched = preset("8gpu", 1024, num_gpus=8)
    phase = plan_phase(sched, 0, 25000, minibatch_repeats=4)
    # 256-image minibatches, schedule read every 4: the stable 8x8 phase ends at the first group start past
    # 600 kimg, where lod drops below 7 and (floor, ceil) changes.
    groups = math.floor(600_000 / (256 * 4)) + 1
    assert phase.num_steps == groups * 4 and phase.key == (7, 7) and phase.minibatch == 256
    fade = plan_phase(sched, phase.end_nimg, 25000, minibatch_repeats=4, phase_index=1)
    assert fade.key == (6, 7) and fade.level == 6 and fade.resolution == 16 and fade.minibatch == 128
    assert fade.end_nimg >= 1_200_000 > fade.end_nimg - 4 * 128


def test_phase_plan_stops_at_total_kimg():
    sched = preset("1gpu", 32)
    phase = plan_phase(sched, 0, 1.0, minibatch_repeats=4)
    assert phase.num_steps == 8                 # two groups of 4 x 128 images reach 1 kimg
    assert plan_phase(sched, 1024, 1.0) is None


def test_table_lists_phase_boundaries():
    rows = preset("1gpu", 64).table(3000)
    kimgs = [r.kimg for r in rows]
    assert kimgs == [0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0]
    assert [r.resolution for r in rows] == [8, 8, 16, 16, 32, 32]


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown batch preset"):
        preset("3gpu", 64)


def _plan_steps_by_walking(sched, nimg, total_kimg, repeats):
    # The original loop, group by group: the reference for the bisecting plan_phase.
    total, s, steps, n = int(round(total_kimg * 1000)), sched.at(nimg / 1000.0), 0, nimg
    while n < total and sched.at(n / 1000.0).phase_key == s.phase_key:
        steps += repeats
        n += repeats * s.minibatch
    return steps


@pytest.mark.parametrize("train,trans,total,init", [(600, 600, 25000, 8), (0.016, 0.032, 0.1, 8), (1, 0, 7.3, 4),
                                                    (0, 2.5, 9, 16), (3.3, 1.1, 30, 1024)])
def test_phase_plan_bisect_matches_the_group_walk(train, trans, total, init):
    sched = preset("1gpu", 64, lod_training_kimg=train, lod_transition_kimg=trans,
                   lod_initial_resolution=min(init, 64), minibatch_dict={8: 7, 16: 5, 32: 3, 64: 2})
    nimg, index = 0, 0
    while True:
        phase = plan_phase(sched, nimg, total, 4, index)
        if phase is None:
            break
        assert phase.num_steps == _plan_steps_by_walking(sched, nimg, total, 4)
        nimg, index = phase.end_nimg, index + 1
    assert nimg >= total * 1000 and index >= 1


def test_table_is_bounded_whatever_the_length():
    # 1e6 kimg of 1-kimg phases used to build a million-row table (and `inf` never finished).
    rows = preset("1gpu", 1024, lod_training_kimg=0.5, lod_transition_kimg=0.5).table(1e6)
    assert len(rows) <= 2 * 9 + 2 and rows[-1].kimg == 1e6 and rows[-1].lod == 0.0
    assert preset("1gpu", 64).table(1e6)[-2].kimg == 3600.0    # full resolution reached there
