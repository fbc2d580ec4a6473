"""Soak and fault runs of the real drivers on the simulated rig (register-level chips, SimBus).

The ten-minute soak and the 50 kill cycles are marked ``soak`` (`make soak`); short versions of
both run by default. Wall time is measured by ``benchmarks/acquisition.py``, never asserted.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from spinecoach.acquisition.sampler import Sampler
from spinecoach.acquisition.sim_rig import build_sim_rig
from spinecoach.drivers.blocks import Block, Gap
from spinecoach.recording.native import scan_native

#: The issue's soak: 1 % errno 121, 0.1 % errno 110, 0.1 % errno 5 on every transaction.
SOAK_FAULTS = "121:0.01,110:0.001,5:0.001"
SCENARIO = "good_morning_tempo"


def _soak(seconds: float) -> None:
    rig = build_sim_rig(SCENARIO, faults=SOAK_FAULTS, fault_seed=7)
    sampler = rig.sampler()
    nau = rig.chips[0x2A]
    missed_before = read_before = -1
    gaps: dict[str, list[Gap]] = {}
    delivered: dict[str, int] = {}
    last: dict[str, int] = {}
    for block in sampler.blocks(seconds):
        name = block.info.name
        if name == "force" and read_before < 0:
            # Conversions made while the chips were starting belong to no stream (the chip
            # counts them lazily, at the first read).
            read_before = nau.conversions_read - len(block)
            missed_before = nau.missed_conversions - sum(g.count for g in block.gaps)
        gaps.setdefault(name, []).extend(block.gaps)
        delivered[name] = delivered.get(name, 0) + len(block)
        if len(block):
            assert block.index[0] > last.get(name, -1)  # strictly increasing across blocks
            last[name] = int(block.index[-1])
    accounts = sampler.accounts()
    assert rig.bus.counters.injected_errors  # the faults really happened
    for name, account in accounts.items():
        gap_samples = sum(g.count for g in gaps.get(name, []))
        assert account.delivered == delivered[name]
        assert account.gap_samples == gap_samples
        assert delivered[name] + gap_samples == account.expected  # 100 % accounted
    # At most 0.01 % of the samples in gaps (a conversion is lost when a FIFO transfer fails
    # twice in a row while it waits: about one in 20 000).
    total = sum(a.expected for a in accounts.values())
    assert sum(a.gap_samples for a in accounts.values()) <= 1e-4 * total
    # None silently lost: the chips' own counts agree with the sampler's.
    assert accounts["force"].delivered == nau.conversions_read - read_before
    assert accounts["force"].gap_samples == nau.missed_conversions - missed_before
    assert rig.chips[0x68].overflows == 0
    # Bus load at 400 kHz, every transfer and retry counted. The IMU's FIFO payload alone
    # (12 bytes x 1000 / s x 9 clocks) is 27 % and each conversion costs at least 6 bytes (4.3 %),
    # so the 30 % cannot be met; the README reports the measured figure (about 45 %
    # with the drain after every conversion that keeps the load cell free of gaps).
    payload = 12 * 1000 * 9 / rig.bus.bus_hz
    assert payload == pytest.approx(0.27)
    assert rig.bus.counters.wire_time_s / seconds <= 0.50


def test_soak_30_seconds_with_transient_bus_errors() -> None:
    _soak(30.0)


@pytest.mark.soak
def test_soak_10_minutes_with_transient_bus_errors() -> None:
    _soak(600.0)


def _collect(rig_faults: str, seconds: float, scenario: str = SCENARIO) -> tuple[Sampler, list[Block], object]:
    rig = build_sim_rig(scenario, faults=rig_faults)
    sampler = rig.sampler()
    return sampler, list(sampler.blocks(seconds)), rig


def _stream(blocks: list[Block], name: str) -> tuple[np.ndarray, list[Gap]]:
    mine = [b for b in blocks if b.info.name == name]
    return np.concatenate([b.index for b in mine]), [g for b in mine for g in b.gaps]


def test_150ms_reader_stall_on_the_simulated_rig() -> None:
    sampler, blocks, _ = _collect("stall@5:0.15", 8.0)
    _, gaps = _stream(blocks, "trunk")
    assert [g.reason for g in gaps] == ["stall"]
    assert gaps[0].count / 1000.0 == pytest.approx(0.150, abs=0.005)
    _, force_gaps = _stream(blocks, "force")
    assert [g.reason for g in force_gaps] == ["stall"]
    assert force_gaps[0].count / 320 == pytest.approx(0.150, abs=0.005)
    acc = sampler.accounts()["trunk"]
    assert acc.delivered + acc.gap_samples == acc.expected


def test_bus_outage_2s_and_3s_on_the_simulated_rig() -> None:
    rig = build_sim_rig(SCENARIO, faults="outage@5:2,outage@12:3")
    sampler = rig.sampler()
    mpu, driver = rig.chips[0x68], rig.imus[0]
    # Truth from the simulator (private state, read for the test only): it samples at
    # anchor + k / rate and its anchor moves when the FIFO restarts. Note the true time of the
    # last frame each drain delivered, and pair it with the new anchor at each restart.
    last_frame_t = [math.nan]
    restarts: list[tuple[float, float]] = []
    drain, start = driver.drain, driver.start

    def noting_drain(*args: int | None) -> object:
        read = drain(*args)
        if len(read.raw):
            schedule = mpu._schedule  # type: ignore[attr-defined]
            last_frame_t[0] = schedule.anchor_s + (schedule.next_k - 1) / schedule.rate_hz
        return read

    def noting_start() -> None:
        start()
        restarts.append((last_frame_t[0], mpu._schedule.anchor_s))  # type: ignore[attr-defined]

    driver.drain, driver.start = noting_drain, noting_start  # type: ignore[method-assign]
    blocks = list(sampler.blocks(18.0))
    truth = restarts[1:]  # the first start is the session's
    for name in ("trunk", "force"):
        _, gaps = _stream(blocks, name)
        assert [g.reason for g in gaps] == ["outage", "outage"], name  # one record per outage
        info = next(b.info for b in blocks if b.info.name == name)
        for (start, duration), gap in zip([(5.0, 2.0), (12.0, 3.0)], gaps, strict=True):
            # Sample times of a simulated rig are the scenario's (and the bus clock's) times.
            resume_t = info.t0_s + (gap.start_index + gap.count) / info.rate_hz
            assert start + duration <= resume_t + 2 / info.rate_hz
            assert resume_t <= start + duration + 1.0  # first good sample within 1 s
    # The gap lengths are right within one sample: the frames the chip really lost between
    # the last one delivered and the first of its restarted FIFO.
    _, gaps = _stream(blocks, "trunk")
    for gap, (last_t, anchor_t) in zip(gaps, truth, strict=True):
        true_lost = round((anchor_t - last_t) * 1000.0) - 1
        assert abs(gap.count - true_lost) <= 1, (gap.count, true_lost)
    acc = sampler.accounts()
    assert all(a.delivered + a.gap_samples == a.expected for a in acc.values())
    assert sampler.tare_stale["force"]


def test_silent_mpu_reset_on_the_simulated_rig() -> None:
    _, blocks, _ = _collect("reset@4.01:0x68", 6.0)
    _, gaps = _stream(blocks, "trunk")
    assert [g.reason for g in gaps] == ["chip_reset"]
    info = next(b.info for b in blocks if b.info.name == "trunk")
    resume_t = (info.t0_s
                + (gaps[0].start_index + gaps[0].count) / info.rate_hz)
    assert 4.01 < resume_t and resume_t - 4.01 <= 0.1  # found and re-initialised within 100 ms
    # No frozen sample delivered as valid: every valid accel sample varies like the signal.
    valid = np.concatenate([b.valid for b in blocks if b.info.name == "trunk"])
    raw = np.concatenate([b.raw for b in blocks if b.info.name == "trunk"])  # type: ignore[misc]
    runs = np.all(raw[1:] == raw[:-1], axis=1) & valid[1:] & valid[:-1]
    assert runs.sum() < 5


def test_nau7802_reset_marks_the_tare_stale_on_the_simulated_rig() -> None:
    sampler, blocks, _ = _collect("reset@3:0x2A", 5.0)
    _, gaps = _stream(blocks, "force")
    assert [g.reason for g in gaps] == ["chip_reset"]
    assert sampler.tare_stale["force"]


# -- kill -9 while recording -------------------------------------------------------------------
def _kill_cycle(tmp: Path, rng: random.Random) -> float:
    """Record in a subprocess, SIGKILL it at a random time; return the sample time lost (s)."""
    out = tmp / f"kill{rng.randrange(1 << 30)}.screc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinecoach", "record", "--backend", f"sim:{SCENARIO}",
         "--realtime", "--progress", "--seconds", "60", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("recording"), line + proc.stderr.read()  # type: ignore[union-attr]
    time.sleep(rng.uniform(0.05, 1.5))
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    progress = [float(ln[2:]) for ln in rest.splitlines() if ln.startswith("t=")]
    scanned = scan_native(out)  # every file opens
    assert not scanned.finalised
    rec = scanned.recording
    # Before the first flush nothing is on disk: the loss runs from the first sample's time.
    on_disk = max(
        (s.info.t0_s + float(s.index[-1]) / s.info.rate_hz
         for s in [*rec.imu.values(), *rec.force.values()] if len(s.index)),
        default=min(s.t0_s for s in rec.streams),
    )
    acquired = max(progress, default=0.0)
    return max(0.0, acquired - on_disk)


def _kill_cycles(tmp: Path, cycles: int) -> None:
    rng = random.Random(1234)
    lost = [_kill_cycle(tmp, rng) for _ in range(cycles)]
    assert max(lost) <= 0.100, lost


def test_kill_9_while_recording_5_cycles(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 5)


@pytest.mark.soak
def test_kill_9_while_recording_50_cycles(tmp_path: Path) -> None:
    _kill_cycles(tmp_path, 50)
