"""`spinecoach doctor`: probe the I2C sensors, sample them briefly, say what to fix."""

from __future__ import annotations

import argparse
import sys

from spinecoach.doctor import SystemClock, configured_bus_hz, healthy_sim_chips, run_doctor
from spinecoach.drivers.bus import RetryingBus, open_bus
from spinecoach.drivers.sim.bus import SimBus
from spinecoach.errors import NoBusError, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the sensors on the I2C bus and say what to fix",
        description=(
            "Probe the I2C bus for the trunk IMU (MPU-6050 at 0x68 or LSM6DSOX at 0x6A/0x6B), "
            "the optional pelvis IMU (0x69) and the NAU7802 load cell (0x2A); report each as "
            "found, wrong id or absent with the fix to try; then sample for a few seconds and "
            "report the achieved rates, errors and retries. Exits 0 when the rig is healthy."
        ),
    )
    parser.add_argument(
        "--bus", type=int, default=1, metavar="N", help="I2C bus number (default 1)"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="how long to sample (default 3 s)"
    )
    parser.add_argument(
        "--sim", action="store_true", help="run on a simulated bus with healthy chips"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 600:
        raise UsageError(f"--seconds {args.seconds:g} out of range: use 0 < seconds <= 600")
    if args.sim:
        sim = SimBus(healthy_sim_chips())
        bus = RetryingBus(sim, sleep=sim.clock.sleep)
        title = f"spinecoach doctor: simulated I2C bus {args.bus} (--sim), {sim.bus_hz / 1e3:g} kHz"
        return run_doctor(bus, sim.clock, args.seconds, sys.stdout, title, bus_hz=sim.bus_hz)
    try:
        raw = open_bus(args.bus)
    except NoBusError as error:
        raise NoBusError(
            f"no I2C bus /dev/i2c-{args.bus} on this machine: enable I2C (sudo raspi-config "
            "nonint do_i2c 0, then reboot), check --bus, or try `spinecoach doctor --sim`"
        ) from error
    clock = SystemClock()
    bus_hz = configured_bus_hz(args.bus)
    speed = f", {bus_hz / 1e3:g} kHz" if bus_hz is not None else ""
    try:
        title = f"spinecoach doctor: I2C bus {args.bus} (/dev/i2c-{args.bus}{speed})"
        return run_doctor(
            RetryingBus(raw, sleep=clock.sleep),
            clock,
            args.seconds,
            sys.stdout,
            title,
            bus_hz=bus_hz,
        )
    finally:
        raw.close()
