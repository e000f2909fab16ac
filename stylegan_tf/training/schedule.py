"""The progressive-growing schedule of NVIDIA's training loop: kimg -> lod, resolution, minibatch, lr, tick.

Numbers follow `training_schedule()` and the StyleGAN presets of the official `train.py`.
"""
import dataclasses
import math

# Official minibatch presets (StyleGAN `train.py`): (minibatch_base, minibatch_dict) per GPU count.
BATCH_PRESETS = {
    "1gpu": (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    "2gpu": (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    "4gpu": (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    "8gpu": (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
# StyleGAN's FFHQ config raises the learning rate at high resolution (same dict for G and D).
STYLEGAN_LRATE_DICT = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
TICK_KIMG_DICT = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


@dataclasses.dataclass(frozen=True)
class ScheduleState:
    kimg: float
    lod: float
    level: int            # floor(lod): the structure traced for this step (resolution = R / 2**level)
    resolution: int
    minibatch: int
    G_lrate: float
    D_lrate: float
    tick_kimg: float

    @property
    def phase_key(self):
        """Both Adam states are reset whenever this pair changes (official `reset_opt_for_new_lod`)."""
        return (math.floor(self.lod), math.ceil(self.lod))

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainingSchedule:
    resolution: int                              # dataset (= final) resolution
    lod_initial_resolution: int = 8
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    minibatch_base: int = 4
    minibatch_dict: dict = dataclasses.field(default_factory=lambda: dict(BATCH_PRESETS["1gpu"][1]))
    max_minibatch_per_gpu: dict = dataclasses.field(default_factory=dict)
    G_lrate_base: float = 0.001
    G_lrate_dict: dict = dataclasses.field(default_factory=lambda: dict(STYLEGAN_LRATE_DICT))
    D_lrate_base: float = 0.001
    D_lrate_dict: dict = dataclasses.field(default_factory=lambda: dict(STYLEGAN_LRATE_DICT))
    lrate_rampup_kimg: float = 0.0
    tick_kimg_base: float = 160.0
    tick_kimg_dict: dict = dataclasses.field(default_factory=lambda: dict(TICK_KIMG_DICT))
    num_gpus: int = 1

    @property
    def resolution_log2(self):
        return int(round(math.log2(self.resolution)))

    def at(self, kimg):
        """The training parameters in force at `kimg` thousand real images shown."""
        kimg = float(kimg)
        phase_dur = self.lod_training_kimg + self.lod_transition_kimg
        phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
        phase_kimg = kimg - phase_idx * phase_dur
        lod = float(self.resolution_log2)
        lod -= math.floor(math.log2(self.lod_initial_resolution))
        lod -= phase_idx
        if self.lod_transition_kimg > 0:
            lod -= max(phase_kimg - self.lod_training_kimg, 0.0) / self.lod_transition_kimg
        lod = max(lod, 0.0)
        level = int(math.floor(lod))
        res = 2 ** (self.resolution_log2 - level)

        minibatch = int(self.minibatch_dict.get(res, self.minibatch_base))
        minibatch -= minibatch % self.num_gpus
        if res in self.max_minibatch_per_gpu:
            minibatch = min(minibatch, int(self.max_minibatch_per_gpu[res]) * self.num_gpus)

        g_lr = float(self.G_lrate_dict.get(res, self.G_lrate_base))
        d_lr = float(self.D_lrate_dict.get(res, self.D_lrate_base))
        if self.lrate_rampup_kimg > 0:
            ramp = min(kimg / self.lrate_rampup_kimg, 1.0)
            g_lr *= ramp
            d_lr *= ramp
        tick = float(self.tick_kimg_dict.get(res, self.tick_kimg_base))
        return ScheduleState(kimg=kimg, lod=lod, level=level, resolution=res, minibatch=minibatch,
                             G_lrate=g_lr, D_lrate=d_lr, tick_kimg=tick)

    def table(self, total_kimg, start_kimg=0.0):
        """Rows (kimg, lod, resolution, minibatch, G_lrate, D_lrate) at every change of the schedule's shape:
        each phase start and end, for `--dry-run`. Once at full resolution nothing changes any more, so the
        table has at most two rows per level whatever `total_kimg` is."""
        phase_dur = self.lod_training_kimg + self.lod_transition_kimg
        points = {float(start_kimg), float(total_kimg)}
        if phase_dur > 0:
            growing_phases = self.resolution_log2 - math.floor(math.log2(self.lod_initial_resolution)) + 1
            for i in range(max(growing_phases, 0) + 1):
                k = i * phase_dur
                if k >= total_kimg:
                    break
                points.update((k, k + self.lod_training_kimg))
        rows = [self.at(k) for k in sorted(p for p in points if start_kimg <= p <= total_kimg)]
        # At full resolution: keep the first such row and the last.
        full = [i for i, r in enumerate(rows) if r.lod == 0.0]
        drop = set(full[1:-1])
        return [r for i, r in enumerate(rows) if i not in drop]


def format_table(rows):
    lines = [f"{'kimg':>9} {'lod':>6} {'res':>5} {'minibatch':>9} {'G_lrate':>8} {'D_lrate':>8} {'tick_kimg':>9}"]
    for r in rows:
        lines.append(f"{r.kimg:9.1f} {r.lod:6.2f} {r.resolution:5d} {r.minibatch:9d} {r.G_lrate:8.4g} "
                     f"{r.D_lrate:8.4g} {r.tick_kimg:9.1f}")
    return "\n".join(lines)


@dataclasses.dataclass
class Phase:
    """A run of minibatch groups with one (floor(lod), ceil(lod)): one `fit` call, one trace of train_step."""
    index: int
    key: tuple
    level: int
    resolution: int
    minibatch: int
    G_lrate: float
    D_lrate: float
    tick_kimg: float
    start_nimg: int
    num_steps: int            # total steps in this phase (a multiple of minibatch_repeats, except none)

    @property
    def end_nimg(self):
        return self.start_nimg + self.num_steps * self.minibatch


def plan_phase(schedule, nimg, total_kimg, minibatch_repeats=4, phase_index=0):
    """The phase that starts at `nimg`: the official loop re-reads the schedule every `minibatch_repeats`
    minibatches, so a phase ends at the first group start whose (floor, ceil)(lod) differs, or when
    `total_kimg` is reached (checked after each group, as the original does)."""
    total = int(round(total_kimg * 1000))
    if nimg >= total:
        return None
    s = schedule.at(nimg / 1000.0)
    group = minibatch_repeats * s.minibatch
    # lod never increases with kimg, so once a group start has another (floor, ceil) every later one has too:
    # bisect for the first such group instead of walking millions of groups of a long run.
    lo, hi = 1, -(-(total - nimg) // group)       # groups [0, lo) are in the phase; the phase has <= hi groups
    while lo < hi:
        mid = (lo + hi) // 2
        if schedule.at((nimg + mid * group) / 1000.0).phase_key == s.phase_key:
            lo = mid + 1
        else:
            hi = mid
    steps = lo * minibatch_repeats
    return Phase(index=phase_index, key=s.phase_key, level=s.level, resolution=s.resolution,
                 minibatch=s.minibatch, G_lrate=s.G_lrate, D_lrate=s.D_lrate, tick_kimg=s.tick_kimg,
                 start_nimg=nimg, num_steps=steps)


def preset(name, resolution, num_gpus=1, **overrides):
    """A `TrainingSchedule` with the official minibatch preset `name` ('1gpu', '2gpu', '4gpu', '8gpu')."""
    if name not in BATCH_PRESETS:
        raise ValueError(f"unknown batch preset {name!r}: choose one of {', '.join(BATCH_PRESETS)}")
    base, mb = BATCH_PRESETS[name]
    kw = dict(resolution=resolution, minibatch_base=base, minibatch_dict=dict(mb), num_gpus=num_gpus)
    kw.update(overrides)
    return TrainingSchedule(**kw)
