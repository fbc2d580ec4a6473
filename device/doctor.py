"""`spinecoach doctor`: check the sensors on the I2C bus and say what to fix.

Two stages, both written against the :class:`~spinecoach.drivers.bus.I2CBus` Protocol so they
run unchanged on the Pi's bus and on a :class:`~spinecoach.drivers.sim.bus.SimBus`:

1. **Probe**: read each expected chip's identity register directly (no driver needed) and
   report it found, wrong id or absent, with the fix to try.
2. **Sample**: start the drivers of the chips found, read them for a few seconds at the
   acquisition cadence and report the achieved rates, missed samples, errors and retries.
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.bus import I2CBus, RetryingBus
from spinecoach.drivers.interfaces import Clock, ImuDriver
from spinecoach.drivers.lsm6dsox import Lsm6dsox
from spinecoach.drivers.mpu6050 import Mpu6050
from spinecoach.drivers.nau7802 import Nau7802
from spinecoach.drivers.sim.bus import SimBus, SimChip
from spinecoach.drivers.sim.mpu6050_chip import Mpu6050Chip
from spinecoach.drivers.sim.nau7802_chip import Nau7802Chip
from spinecoach.errors import SensorError, SpinecoachError

#: errno values that mean "nobody acknowledged the address": the chip is not there.
NO_ACK_ERRNOS = frozenset({errno.EREMOTEIO, errno.ENXIO})

#: Identity-register values of look-alike chips, to name what answered instead.
KNOWN_IDS: dict[int, str] = {
    0x70: "MPU-6500",
    0x71: "MPU-9250",
    0x73: "MPU-9255",
    0x69: "LSM6DS3",
    0x6A: "LSM6DSL",
}

BUS_SPEED_FIX = (
    "run the bus at 400 kHz (dtparam=i2c_arm_baudrate=400000 in /boot/firmware/config.txt, "
    "then reboot); on long cables add 2.2 kOhm pull-ups at the far end or try 100 kHz"
)
ENABLE_I2C_FIX = "enable I2C (sudo raspi-config nonint do_i2c 0, then reboot)"
#: I2C fast mode (Hz): the IMU at 1 kHz plus the load cell at 320 SPS need it.
FAST_MODE_HZ = 400_000.0
#: Achieved rates below this fraction of nominal are reported as a problem.
RATE_TOLERANCE = 0.05
#: Acquisition cadence while sampling: the load cell is polled every millisecond (under half
#: its 3.1 ms period at 320 SPS); the IMU FIFOs are drained every 5 ms, so one drain (5 frames,
#: about 1.6 ms on the wire at 400 kHz) never hides two load-cell conversions.
FORCE_POLL_S = 0.001
IMU_DRAIN_S = 0.005


class Status(StrEnum):
    """What answered at an expected address."""

    FOUND = "found"
    WRONG_ID = "wrong id"
    ABSENT = "absent"
    BUS_ERROR = "bus error"


@dataclass(frozen=True)
class Candidate:
    """A chip that may fill a role: its address and identity register."""

    chip: str
    address: int
    id_register: int
    expected_id: int
    id_mask: int = 0xFF
    wiring: str = ""

    @property
    def label(self) -> str:
        return f"{self.chip} at 0x{self.address:02X}"


@dataclass(frozen=True)
class Role:
    """A sensor the rig expects, the chips that can fill it and the fix when none answers."""

    name: str
    kind: str  # "imu" or "force"
    candidates: tuple[Candidate, ...]
    required: bool
    absent_fix: str


MPU6050_WHO_AM_I = 0x75  # MPU-6050 register map rev 4.2, §4.32
MPU6050_ID = 0x68
LSM6DSOX_WHO_AM_I = 0x0F  # LSM6DSOX datasheet §9.12
LSM6DSOX_ID = 0x6C
NAU7802_REVISION = 0x1F  # NAU7802 datasheet §11, low nibble 0xF
NAU7802_ID = 0x0F

TRUNK = Role(
    "trunk IMU",
    "imu",
    (
        Candidate("MPU-6050", 0x68, MPU6050_WHO_AM_I, MPU6050_ID, wiring="AD0 to GND for 0x68"),
        Candidate("LSM6DSOX", 0x6A, LSM6DSOX_WHO_AM_I, LSM6DSOX_ID, wiring="SDO to GND for 0x6A"),
        Candidate("LSM6DSOX", 0x6B, LSM6DSOX_WHO_AM_I, LSM6DSOX_ID, wiring="SDO to 3V3 for 0x6B"),
    ),
    required=True,
    absent_fix=(
        "nothing answers at 0x68, 0x6A or 0x6B: check the IMU's wiring (VCC to 3V3 pin 1, GND "
        "pin 6, SDA pin 3, SCL pin 5, SDA/SCL not swapped) and its address pin (MPU-6050 AD0 "
        "to GND for 0x68)"
    ),
)
PELVIS = Role(
    "pelvis IMU",
    "imu",
    (Candidate("MPU-6050", 0x69, MPU6050_WHO_AM_I, MPU6050_ID, wiring="AD0 to 3V3 for 0x69"),),
    required=False,
    absent_fix="optional, not fitted; to add one, tie its AD0 pin to 3V3 so it answers at 0x69",
)
LOAD_CELL = Role(
    "load cell",
    "force",
    (Candidate("NAU7802", 0x2A, NAU7802_REVISION, NAU7802_ID, id_mask=0x0F),),
    required=True,
    absent_fix=(
        "nothing answers at 0x2A: check the NAU7802 breakout's cable (Qwiic: 3V3, GND, SDA, "
        "SCL) and that it is powered"
    ),
)
ROLES: tuple[Role, ...] = (TRUNK, PELVIS, LOAD_CELL)


@dataclass(frozen=True)
class Probe:
    """The answer of one candidate address."""

    candidate: Candidate
    status: Status
    id_value: int | None = None
    error: str = ""


@dataclass(frozen=True)
class RoleReport:
    """A role's outcome: the chip found (if any) and the line to print."""

    role: Role
    status: Status
    found: Candidate | None
    probes: tuple[Probe, ...]
    message: str

    @property
    def problem(self) -> bool:
        """True when the rig cannot work as expected until this is fixed."""
        if self.status is Status.FOUND:
            return False
        return self.role.required or self.status is not Status.ABSENT


def probe(bus: RetryingBus, candidate: Candidate) -> Probe:
    """Read ``candidate``'s identity register (with the bus's bounded retries)."""
    try:
        value = bus.read_byte_data(candidate.address, candidate.id_register)
    except SensorError as error:
        cause = error.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        if code in NO_ACK_ERRNOS:
            return Probe(candidate, Status.ABSENT)
        return Probe(candidate, Status.BUS_ERROR, error=str(error))
    if value & candidate.id_mask == candidate.expected_id:
        return Probe(candidate, Status.FOUND, value)
    return Probe(candidate, Status.WRONG_ID, value)


def _wrong_id_message(found: Probe) -> str:
    candidate = found.candidate
    assert found.id_value is not None
    name = KNOWN_IDS.get(found.id_value)
    what = f" (that is an {name})" if name else ""
    rtc = " or a real-time clock (DS1307/DS3231) shares 0x68" if candidate.address == 0x68 else ""
    return (
        f"a different chip answers at 0x{candidate.address:02X}: register "
        f"0x{candidate.id_register:02X} reads 0x{found.id_value:02X}{what}, an {candidate.chip} "
        f"reads 0x{candidate.expected_id:02X};"
        f" check the board is an {candidate.chip} and that no other device{rtc} uses the address"
    )


def assess_role(role: Role, probes: Sequence[Probe], taken: set[int]) -> RoleReport:
    """Decide a role's status from its candidates' probes (addresses in ``taken`` are used)."""
    mine = [
        p for p in probes if p.candidate in role.candidates and p.candidate.address not in taken
    ]
    for p in mine:
        if p.status is Status.FOUND:
            message = f"{p.candidate.label} (id 0x{p.id_value:02X})"
            return RoleReport(role, Status.FOUND, p.candidate, tuple(mine), message)
    for status in (Status.WRONG_ID, Status.BUS_ERROR):
        for p in mine:
            if p.status is status:
                message = (
                    _wrong_id_message(p)
                    if status is Status.WRONG_ID
                    else f"{p.candidate.label}: {p.error}; {BUS_SPEED_FIX}"
                )
                return RoleReport(role, status, None, tuple(mine), message)
    return RoleReport(role, Status.ABSENT, None, tuple(mine), role.absent_fix)


def probe_rig(bus: RetryingBus, roles: Sequence[Role] = ROLES) -> list[RoleReport]:
    """Probe every candidate address once and assess each role in order."""
    candidates = list(dict.fromkeys(c for role in roles for c in role.candidates))
    probes = [probe(bus, c) for c in candidates]
    taken: set[int] = set()
    reports = []
    for role in roles:
        report = assess_role(role, probes, taken)
        if report.found is not None:
            taken.add(report.found.address)
        reports.append(report)
    _add_cross_hints(reports, probes)
    return reports


def _add_cross_hints(reports: list[RoleReport], probes: Sequence[Probe]) -> None:
    """Hints that need the whole bus: a trunk IMU on the pelvis address, a silent bus."""
    by_role = {r.role.name: i for i, r in enumerate(reports)}
    trunk = reports[by_role[TRUNK.name]] if TRUNK.name in by_role else None
    pelvis = reports[by_role[PELVIS.name]] if PELVIS.name in by_role else None
    if trunk and pelvis and trunk.status is Status.ABSENT and pelvis.status is Status.FOUND:
        reports[by_role[TRUNK.name]] = RoleReport(
            trunk.role,
            trunk.status,
            None,
            trunk.probes,
            "an MPU-6050 answers at 0x69 but none at 0x68: tie the trunk IMU's AD0 pin to GND "
            "(0x69 is the pelvis IMU's address)",
        )
    if all(p.status is Status.ABSENT for p in probes):
        for i, report in enumerate(reports):
            if report.role.required:
                reports[i] = RoleReport(
                    report.role,
                    report.status,
                    None,
                    report.probes,
                    f"{report.message}. No device answers on this bus at all: check that the "
                    "sensors are powered, SDA/SCL are not swapped, the pull-ups are fitted, and "
                    "that this is the right bus (--bus; `i2cdetect -y N` lists them); "
                    f"{ENABLE_I2C_FIX}",
                )


# -- sampling --------------------------------------------------------------------------------
@dataclass
class StreamTally:
    """What one sensor delivered while sampling."""

    name: str
    chip: str
    kind: str
    nominal_hz: float
    delivered: int = 0
    missed: int = 0
    saturated: int = 0
    overflows: int = 0
    reinitialised: int = 0
    errors: list[str] = field(default_factory=list)

    def rate_hz(self, seconds: float) -> float:
        return self.delivered / seconds if seconds > 0 else 0.0

    @property
    def unit(self) -> str:
        return "frames/s" if self.kind == "imu" else "conversions/s"


@dataclass
class SamplingReport:
    """Achieved rates and bus health over ``seconds`` of sampling."""

    seconds: float
    streams: list[StreamTally]
    transactions: int
    retries: int
    failures: int
    wire_fraction: float | None = None

    def slow_streams(self) -> list[StreamTally]:
        return [
            s
            for s in self.streams
            if s.rate_hz(self.seconds) < (1 - RATE_TOLERANCE) * s.nominal_hz or s.errors
        ]


ImuFactory = Callable[[I2CBus, Clock, Candidate, str], ImuDriver]


#: Driver class of each IMU chip a role can hold (their defaults: MPU-6050 1 kHz, LSM6DSOX
#: 833 Hz, as acquisition runs them).
IMU_DRIVERS: dict[str, Callable[..., ImuDriver]] = {"MPU-6050": Mpu6050, "LSM6DSOX": Lsm6dsox}


def build_imu(bus: I2CBus, clock: Clock, candidate: Candidate, name: str) -> ImuDriver:
    """The driver of an IMU the probe found, with the acquisition defaults."""
    return IMU_DRIVERS[candidate.chip](bus, clock, address=candidate.address, name=name)


class _ForceSampler:
    def __init__(self, driver: Nau7802, tally: StreamTally) -> None:
        self.driver = driver
        self.tally = tally
        self.skip_missed_once = False

    def step(self) -> None:
        read = self.driver.poll()
        tally = self.tally
        if read.code is not None and self.skip_missed_once:
            self.skip_missed_once = False
        else:
            tally.missed += read.missed
        tally.reinitialised += read.reinitialised
        if read.code is not None:
            tally.delivered += 1
            tally.saturated += read.saturated


#: Every this many drains the IMU's configuration is read back (a silent reset shows up).
IMU_CHECK_EVERY_DRAINS = 20


class _ImuSampler:
    def __init__(self, driver: ImuDriver, tally: StreamTally) -> None:
        self.driver = driver
        self.tally = tally
        self.drains = 0

    def step(self) -> None:
        self.drains += 1
        if self.drains % IMU_CHECK_EVERY_DRAINS == 0 and self.driver.check_configuration():
            self.tally.reinitialised += 1
        read = self.driver.drain()
        tally = self.tally
        tally.delivered += int(read.raw.shape[0])
        tally.overflows += read.overflowed
        tally.reinitialised += read.reinitialised


def sample(
    bus: RetryingBus,
    clock: Clock,
    reports: Sequence[RoleReport],
    seconds: float,
    imu_factory: ImuFactory = build_imu,
) -> SamplingReport:
    """Start the drivers of the chips found and read them for ``seconds`` at the live cadence."""
    force: list[_ForceSampler] = []
    imus: list[_ImuSampler] = []
    tallies: list[StreamTally] = []
    for report in reports:
        found = report.found
        if found is None:
            continue
        name = report.role.name
        if report.role.kind == "force":
            nau = Nau7802(bus, clock, address=found.address)
            force.append(
                _ForceSampler(nau, StreamTally(name, found.chip, "force", nau.info.rate_hz))
            )
            tallies.append(force[-1].tally)
            continue
        try:
            imu = imu_factory(bus, clock, found, name.split()[0])
        except SpinecoachError as error:
            tallies.append(StreamTally(name, found.chip, "imu", 0.0, errors=[str(error)]))
            continue
        imus.append(_ImuSampler(imu, StreamTally(name, found.chip, "imu", imu.info.rate_hz)))
        tallies.append(imus[-1].tally)
    # The load cell first: its start-up (LDO settling, calibration) takes about 0.2 s, longer
    # than an IMU FIFO holds, so an IMU started before it would overflow.
    everyone: list[_ForceSampler | _ImuSampler] = [*force, *imus]
    started: list[_ForceSampler | _ImuSampler] = []
    for sampler in everyone:
        try:
            sampler.driver.start()
            started.append(sampler)
        except SensorError as error:
            sampler.tally.errors.append(str(error))
    closers = [sampler.driver.close for sampler in everyone]
    force = [s for s in force if s in started]
    imus = [s for s in imus if s in started]
    # Conversions overwritten while the IMUs started belong before the sampling window.
    for load_cell in force:
        load_cell.skip_missed_once = True
    stats_before = (bus.stats.transactions, bus.stats.retries, bus.stats.failures)
    inner = bus.inner
    wire_before = inner.counters.wire_time_s if isinstance(inner, SimBus) else 0.0
    start_s = clock.monotonic_s()
    end_s = start_s + seconds
    next_drain_s = start_s + IMU_DRAIN_S
    try:
        while (now_s := clock.monotonic_s()) < end_s:
            for sampler in force:
                _step_counting_errors(sampler)
            if now_s >= next_drain_s:
                next_drain_s += IMU_DRAIN_S
                for sampler in imus:
                    _step_counting_errors(sampler)
            clock.sleep(FORCE_POLL_S - (clock.monotonic_s() - now_s))
        for sampler in imus:  # the frames collected since the last drain
            _step_counting_errors(sampler)
    finally:
        for close in closers:
            close()
    elapsed_s = clock.monotonic_s() - start_s
    wire_fraction = None
    if isinstance(inner, SimBus):
        wire_fraction = (inner.counters.wire_time_s - wire_before) / elapsed_s
    return SamplingReport(
        seconds=elapsed_s,
        streams=tallies,
        transactions=bus.stats.transactions - stats_before[0],
        retries=bus.stats.retries - stats_before[1],
        failures=bus.stats.failures - stats_before[2],
        wire_fraction=wire_fraction,
    )


def _step_counting_errors(sampler: _ForceSampler | _ImuSampler) -> None:
    try:
        sampler.step()
    except SensorError as error:
        message = str(error)
        if message not in sampler.tally.errors:
            sampler.tally.errors.append(message)


# -- report ----------------------------------------------------------------------------------
def format_probe(reports: Sequence[RoleReport]) -> list[str]:
    width = max(len(r.role.name) for r in reports)
    return [f"{r.role.name:<{width}}  {r.status.value:<9}  {r.message}" for r in reports]


def format_sampling(report: SamplingReport) -> list[str]:
    lines = [f"achieved over {report.seconds:.1f} s:"]
    width = max([len(s.name) for s in report.streams] + [3])
    for s in report.streams:
        rate = s.rate_hz(report.seconds)
        extras = [f"{s.missed} missed"] if s.kind == "force" else [f"{s.overflows} FIFO overflows"]
        if s.kind == "force":
            extras.append(f"{s.saturated} saturated")
        extras.append(f"{s.reinitialised} chip resets")
        lines.append(
            f"{s.name:<{width}}  {rate:7.1f} {s.unit} (nominal {s.nominal_hz:g}), "
            + ", ".join(extras)
        )
        lines.extend(f"{'':<{width}}  error: {message}" for message in s.errors)
    wire = (
        f", wire time {report.wire_fraction * 100:.1f} % of the bus"
        if report.wire_fraction is not None
        else ""
    )
    lines.append(
        f"{'bus':<{width}}  {report.transactions} transactions, {report.retries} retries, "
        f"{report.failures} failed{wire}"
    )
    return lines


def run_doctor(
    bus: RetryingBus,
    clock: Clock,
    seconds: float,
    out: TextIO,
    title: str,
    imu_factory: ImuFactory = build_imu,
    bus_hz: float | None = None,
) -> int:
    """Probe, sample and print the report; return 0 when the rig is healthy, else 69.

    ``bus_hz`` is the bus clock when known (:func:`configured_bus_hz` on a Pi): below fast
    mode the IMU and the load cell do not fit on the bus, which is reported as a problem.
    """
    print(title, file=out)
    slow_bus = bus_hz is not None and bus_hz < FAST_MODE_HZ
    if slow_bus:
        assert bus_hz is not None
        print(
            f"bus speed   {bus_hz / 1e3:g} kHz: too slow for the IMU and the load cell; "
            f"{BUS_SPEED_FIX}",
            file=out,
        )
    reports = probe_rig(bus)
    for line in format_probe(reports):
        print(line, file=out)
    problems = [r for r in reports if r.problem]
    if not any(r.found for r in reports):
        print("nothing to sample: fix the chips above and run `spinecoach doctor` again", file=out)
        return SensorError.exit_status
    print(f"sampling for {seconds:g} s ...", file=out, flush=True)
    sampling = sample(bus, clock, reports, seconds, imu_factory)
    for line in format_sampling(sampling):
        print(line, file=out)
    slow = sampling.slow_streams()
    for stream in slow:
        print(
            f"{stream.name} is short of its nominal rate or failed: check the cable and "
            f"pull-ups and {BUS_SPEED_FIX}",
            file=out,
        )
    if sampling.retries and not slow:
        print(f"transient bus errors were retried: if they persist, {BUS_SPEED_FIX}", file=out)
    healthy = not problems and not slow and not slow_bus
    print("result: " + ("healthy" if healthy else "needs attention (see above)"), file=out)
    return 0 if healthy else SensorError.exit_status


def configured_bus_hz(number: int, adapters: Path = Path("/sys/class/i2c-adapter")) -> float | None:
    """The SCL frequency the device tree gives bus ``number`` (Hz), None when not published.

    The Pi's I2C controllers expose ``of_node/clock-frequency``: one big-endian 32-bit cell,
    set by ``dtparam=i2c_arm_baudrate`` (100 kHz when not set).
    """
    path = adapters / f"i2c-{number}" / "of_node" / "clock-frequency"
    try:
        cell = path.read_bytes()
    except OSError:
        return None
    return float(int.from_bytes(cell[:4], "big")) if len(cell) >= 4 else None


# -- clocks and the simulated rig -----------------------------------------------------------
class SystemClock:
    """The wall-independent monotonic clock of the hardware backend."""

    def monotonic_s(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def _sim_force_n(t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A band pulled every 3 s: 40 N pre-tension rising to 340 N."""
    return 40.0 + 150.0 * (1.0 - np.cos(2.0 * math.pi * t_s / 3.0))


def healthy_sim_chips() -> list[SimChip]:
    """Simulated chips of a healthy rig for ``doctor --sim``: a trunk MPU-6050 at rest and a
    load cell under band pulls (no pelvis IMU: it is optional)."""
    return [
        Mpu6050Chip(address=0x68),
        Nau7802Chip(signal=_sim_force_n, counts_per_n=17.11, noise_counts=40.0),
    ]
