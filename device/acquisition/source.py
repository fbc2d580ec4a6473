"""Sample sources by backend: ``hardware``, ``sim:SCENARIO`` and ``replay:FILE``.

Whatever the backend, a :class:`Source` has the stream table, the session metadata and an
iterator of blocks; nothing downstream can tell them apart.

- ``hardware``: the Pi's I2C bus (:func:`~spinecoach.drivers.bus.open_bus`) behind a
  :class:`~spinecoach.drivers.bus.RetryingBus`, the chip drivers, and the :class:`Sampler` on the
  monotonic clock. A configured sensor that does not answer is reported in one line and left
  out; with none answering the error says what to check.
- ``sim:SCENARIO``: the scenario's rig feeds register-level chip simulators on a
  :class:`~spinecoach.drivers.sim.bus.SimBus`; the *real* drivers and the same sampler read them
  on the bus's virtual clock, as fast as possible or paced to real time.
- ``replay:FILE`` (or a :class:`Recording`): the recording's blocks, as fast as possible or at
  real-time pace.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from spinecoach.acquisition.replay import paced, replay_blocks
from spinecoach.acquisition.sampler import Sampler, SamplerSettings
from spinecoach.backend import Backend
from spinecoach.drivers.blocks import Block, StreamInfo
from spinecoach.drivers.imu_config import ImuConfig, open_imu
from spinecoach.drivers.interfaces import ForceDriver, ImuDriver
from spinecoach.errors import SensorError, UsageError
from spinecoach.recording.load import load_recording
from spinecoach.recording.model import Recording

#: Default I2C addresses of the rig (trunk IMU AD0 low, pelvis IMU AD0 high, NAU7802 fixed).
TRUNK_IMU_ADDRESS = 0x68
PELVIS_IMU_ADDRESS = 0x69
LOAD_CELL_ADDRESS = 0x2A


class MonotonicClock:
    """The hardware backend's clock: ``time.monotonic`` and a real sleep."""

    def monotonic_s(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Source(ABC):
    """Blocks from one backend. Iterate :meth:`blocks`; call :meth:`close` when done."""

    #: Stream table (``t0_s`` set once sampling has started).
    streams: list[StreamInfo]
    #: Session metadata for a recording's header (backend, scenario, exercise, ...).
    meta: dict[str, Any]
    #: Remarks for the user (a sensor left out, a torn recording tail).
    notes: list[str]
    #: One line saying what this source is.
    description: str
    #: Session length when the source has one (scenario, recording), else None.
    duration_s: float | None

    @abstractmethod
    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        """Blocks of every stream in time order, up to ``duration_s`` of sample time (s)."""

    def close(self) -> None:
        """Release chips and buses."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ReplaySource(Source):
    """A recording replayed at real-time pace or as fast as possible."""

    recording: Recording
    realtime: bool = False
    description: str = "recording"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.streams = self.recording.streams
        self.meta = dict(self.recording.meta)
        self.duration_s = self.recording.duration_s

    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        blocks = replay_blocks(self.recording)
        if duration_s is not None:
            # Counted from the first sample, as a live session counts from its start.
            starts = [s.info.t0_s + float(s.index[0]) / s.info.rate_hz
                      for s in [*self.recording.imu.values(), *self.recording.force.values()]
                      if len(s.index)]
            end_t = min(starts, default=0.0) + duration_s
            blocks = (b for b in blocks if not len(b) or float(b.t_s[0]) < end_t)
        return paced(blocks) if self.realtime else blocks


class SamplerSource(Source):
    """Live blocks from a :class:`Sampler` (hardware or simulated chips)."""

    def __init__(
        self,
        sampler: Sampler,
        description: str,
        meta: dict[str, Any],
        notes: Sequence[str] = (),
        duration_s: float | None = None,
        bus: Any = None,
    ) -> None:
        self.sampler = sampler
        self.description = description
        self.meta = meta
        self.notes = list(notes)
        self.duration_s = duration_s
        self.bus = bus
        self._started = False

    @property
    def streams(self) -> list[StreamInfo]:  # type: ignore[override]
        return self.sampler.streams

    def start(self) -> None:
        """Start the chips (before :attr:`streams` is final)."""
        if not self._started:
            self.sampler.start()
            self._started = True

    def blocks(self, duration_s: float | None = None) -> Iterator[Block]:
        self.start()
        return self.sampler.blocks(duration_s if duration_s is not None else self.duration_s)

    def close(self) -> None:
        self.sampler.close()
        if self.bus is not None:
            self.bus.close()


def open_source(
    backend: Backend | str | Recording,
    *,
    realtime: bool = False,
    faults: str = "",
    seed: int | None = None,
    bus_number: int = 1,
    settings: SamplerSettings | None = None,
) -> Source:
    """The :class:`Source` of ``backend``.

    ``realtime`` paces a simulated rig or a replay to the wall clock (hardware always runs in
    real time). ``faults`` is a fault spec for the simulated bus (see
    :mod:`spinecoach.drivers.sim.faults`); ``seed`` overrides the scenario's seed.
    """
    if isinstance(backend, Recording):
        return ReplaySource(backend, realtime=realtime)
    if isinstance(backend, str):
        backend = Backend.parse(backend)
    if faults and backend.kind != "sim":
        raise UsageError("--faults only applies to a simulated rig (--backend sim:SCENARIO)")
    if backend.kind == "replay":
        notes: list[str] = []
        recording = load_recording(backend.path, notes=notes)
        return ReplaySource(recording, realtime=realtime, description=f"replay of {backend.path}",
                            notes=notes)
    if backend.kind == "sim":
        return open_sim_source(backend.target, realtime=realtime, faults=faults, seed=seed,
                               settings=settings)
    return open_hardware_source(bus_number, settings=settings)


def open_sim_source(
    scenario_name: str,
    *,
    realtime: bool = False,
    faults: str = "",
    seed: int | None = None,
    settings: SamplerSettings | None = None,
) -> SamplerSource:
    """A simulated rig: scenario signals -> chip simulators -> SimBus -> real drivers."""
    from spinecoach.acquisition.sim_rig import build_sim_rig

    rig = build_sim_rig(scenario_name, faults=faults, seed=seed)
    sampler = rig.sampler(settings=settings, pace_realtime=realtime)
    scenario = rig.scenario
    meta = {
        "backend": f"sim:{scenario.name}",
        "scenario": scenario.name,
        "exercise": scenario.exercise,
        "description": scenario.description,
        "seed": scenario.seed,
        "faults": faults,
    }
    return SamplerSource(sampler, f"simulated {scenario.name}", meta,
                         duration_s=scenario.duration_s, bus=rig.bus)


#: The rig's IMUs: a trunk MPU-6050 (AD0 low) and an optional pelvis one (AD0 high).
DEFAULT_IMUS = (
    ImuConfig("mpu6050", TRUNK_IMU_ADDRESS, "trunk"),
    ImuConfig("mpu6050", PELVIS_IMU_ADDRESS, "pelvis"),
)


def open_hardware_source(
    bus_number: int = 1,
    settings: SamplerSettings | None = None,
    imus: Sequence[ImuConfig] = DEFAULT_IMUS,
    load_cell: bool = True,
) -> SamplerSource:
    """The rig's chips on ``/dev/i2c-<bus_number>``; absent sensors are left out with a note."""
    from spinecoach.drivers.bus import RetryingBus, open_bus
    from spinecoach.drivers.nau7802 import Nau7802

    clock = MonotonicClock()
    raw_bus = open_bus(bus_number)
    bus = RetryingBus(raw_bus, sleep=clock.sleep)
    candidates: list[tuple[str, Any]] = [
        (f"{c.name} IMU ({c.chip} at 0x{c.address or 0:02X})", open_imu(bus, clock, c))
        for c in imus
    ]
    if load_cell:
        candidates.append(("load cell (NAU7802 at 0x2A)", Nau7802(bus, clock, LOAD_CELL_ADDRESS)))
    found_imus: list[ImuDriver] = []
    found_forces: list[ForceDriver] = []
    notes: list[str] = []
    for label, driver in candidates:
        try:
            driver.start()
        except SensorError as error:
            notes.append(f"{label}: {error}")
            continue
        (found_imus if hasattr(driver, "drain") else found_forces).append(driver)
    if not found_imus and not found_forces:
        bus.close()
        raise SensorError(
            f"no sensor answered on /dev/i2c-{bus_number}: check the wiring, the 3.3 V supply "
            "and `i2cdetect -y 1`; run `spinecoach doctor` for details"
        )
    sampler = Sampler(found_imus, found_forces, clock, settings=settings)
    meta = {"backend": "hardware", "bus": bus_number}
    return SamplerSource(sampler, f"sensors on /dev/i2c-{bus_number}", meta, notes=notes, bus=bus)


def describe_streams(streams: Sequence[StreamInfo]) -> str:
    """``trunk imu 1000 Hz, force 320 Hz`` for a one-line banner."""
    return ", ".join(
        f"{s.name} {s.kind} {s.rate_hz:g} Hz" if s.kind == "imu" else f"{s.name} {s.rate_hz:g} Hz"
        for s in streams
    )


def default_demo_path() -> Path:
    """The bundled demo recording (banded good morning with a load cell)."""
    return Path(__file__).resolve().parent.parent / "data" / "demo.screc"
