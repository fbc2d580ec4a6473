"""Fault injection from a compact text spec.

A spec is a comma-separated list of items (spaces ignored)::

    121:0.01          errno 121 (no ACK) on 1 % of transactions; also 110 and 5
    outage@20:2       every transfer fails with EIO from t = 20 s for 2 s
    stall@5:0.15      the reader is descheduled for 0.15 s at t = 5 s (FIFO overflow)
    reset@12:0x68     the chip at 0x68 silently resets (power-on defaults) at t = 12 s
    unplug@30:0x2A    the chip at 0x2A stops answering (errno 121) from t = 30 s
    spike@8.5:400     a one-sample load-cell spike of +400 N at t = 8.5 s
    spikes@0.2:-300   random load-cell spikes, 0.2 per second on average, of -300 N

Times and durations in seconds, addresses in hex (0x..) or decimal, amplitudes in newtons.
Bus faults become a :class:`~spinecoach.drivers.sim.bus.FaultPlan`; spikes are signal
faults and go to the rig's force signal (:func:`load_cell_spikes`). A malformed spec raises
:class:`~spinecoach.errors.UsageError` naming the item and the accepted forms.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from spinecoach.drivers.bus import TRANSIENT_ERRNOS
from spinecoach.drivers.sim.bus import FaultPlan
from spinecoach.drivers.sim.rig import Spike
from spinecoach.errors import UsageError

FORMS = (
    "ERRNO:RATE (errno 121, 110 or 5, rate 0..1), outage@T:SECONDS, stall@T:SECONDS, "
    "reset@T:ADDRESS, unplug@T:ADDRESS, spike@T:NEWTONS, spikes@PER_SECOND:NEWTONS"
)


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault spec (see the module docstring)."""

    error_rates: Mapping[int, float] = field(default_factory=dict)
    outages: tuple[tuple[float, float], ...] = ()
    stalls: tuple[tuple[float, float], ...] = ()
    resets: tuple[tuple[float, int], ...] = ()
    unplugged: Mapping[int, float] = field(default_factory=dict)
    spikes: tuple[Spike, ...] = ()
    spike_rate_per_s: float = 0.0
    spike_amplitude_n: float = 0.0


def _bad(item: str, why: str) -> UsageError:
    return UsageError(f"fault spec item {item!r} {why}; use {FORMS}, separated by commas")


def _number(item: str, text: str, what: str, *, minimum: float = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(item, f"has {what} {text!r}, which is not a number") from None
    if not math.isfinite(value) or value < minimum:
        raise _bad(item, f"has {what} {text!r}, which must be a finite number >= {minimum:g}")
    return value


def _address(item: str, text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _bad(item, f"has address {text!r}, which is not a number (e.g. 0x68)") from None
    if not 0x03 <= value <= 0x77:
        raise _bad(item, f"has address {text!r}, outside the 7-bit range 0x03..0x77")
    return value


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse a compact fault spec; an empty text means no faults."""
    rates: dict[int, float] = {}
    outages: list[tuple[float, float]] = []
    stalls: list[tuple[float, float]] = []
    resets: list[tuple[float, int]] = []
    unplugged: dict[int, float] = {}
    spikes: list[Spike] = []
    spike_rate, spike_amplitude = 0.0, 0.0
    for raw in text.split(","):
        item = "".join(raw.split())
        if not item:
            continue
        kind, at, rest = item.partition("@")
        if not at:
            code_text, colon, rate_text = item.partition(":")
            if not colon or not code_text.isdigit():
                raise _bad(item, "is not understood")
            code = int(code_text)
            if code not in TRANSIENT_ERRNOS:
                raise _bad(item, f"names errno {code}; only 121, 110 and 5 are injected")
            rate = _number(item, rate_text, "rate")
            if rate > 1.0:
                raise _bad(item, f"has rate {rate_text}, a probability must be <= 1")
            rates[code] = rate
            continue
        first, colon, second = rest.partition(":")
        if not colon or not first or not second:
            raise _bad(item, f"needs two values after '{kind}@'")
        if kind in ("outage", "stall"):
            window = (_number(item, first, "time"), _number(item, second, "duration"))
            (outages if kind == "outage" else stalls).append(window)
        elif kind == "reset":
            resets.append((_number(item, first, "time"), _address(item, second)))
        elif kind == "unplug":
            unplugged[_address(item, second)] = _number(item, first, "time")
        elif kind == "spike":
            spikes.append(Spike(_number(item, first, "time"), _signed(item, second)))
        elif kind == "spikes":
            spike_rate = _number(item, first, "rate")
            spike_amplitude = _signed(item, second)
        else:
            raise _bad(item, f"has unknown fault kind {kind!r}")
    return FaultSpec(
        error_rates=rates,
        outages=tuple(outages),
        stalls=tuple(stalls),
        resets=tuple(resets),
        unplugged=unplugged,
        spikes=tuple(spikes),
        spike_rate_per_s=spike_rate,
        spike_amplitude_n=spike_amplitude,
    )


def _signed(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(item, f"has amplitude {text!r}, which is not a number") from None
    if not math.isfinite(value) or value == 0.0:
        raise _bad(item, f"has amplitude {text!r}, which must be a finite non-zero force (N)")
    return value


def faults_from_spec(
    spec: str | FaultSpec,
    *,
    seed: int = 0,
    reset_callbacks: Mapping[int, Callable[[float], None]] | None = None,
) -> FaultPlan:
    """The bus :class:`FaultPlan` of ``spec``.

    ``reset_callbacks`` maps a chip address to the callable that silently resets that chip's
    simulator (called with the virtual time); every ``reset@`` item needs one. Spikes are not
    bus faults: give :func:`load_cell_spikes` to the rig's force signal.
    """
    parsed = parse_fault_spec(spec) if isinstance(spec, str) else spec
    callbacks = reset_callbacks or {}
    events: list[tuple[float, Callable[[float], None]]] = []
    for at_s, address in parsed.resets:
        if address not in callbacks:
            raise UsageError(
                f"fault spec resets the chip at 0x{address:02X}, but no simulated chip there "
                "can be reset; use the address of a configured chip"
            )
        events.append((at_s, callbacks[address]))
    return FaultPlan(
        error_rates=dict(parsed.error_rates),
        outages=list(parsed.outages),
        unplugged=dict(parsed.unplugged),
        stalls=list(parsed.stalls),
        chip_events=events,
        seed=seed,
    )


def load_cell_spikes(
    spec: str | FaultSpec, duration_s: float, *, seed: int = 0
) -> tuple[Spike, ...]:
    """The load-cell spikes of ``spec`` over ``duration_s``: the scheduled ones plus, for
    ``spikes@RATE:N``, a seeded Poisson process of that rate, sorted by time."""
    parsed = parse_fault_spec(spec) if isinstance(spec, str) else spec
    spikes = list(parsed.spikes)
    if parsed.spike_rate_per_s > 0:
        rng = np.random.default_rng([seed, zlib.crc32(b"load-cell-spikes")])
        count = int(rng.poisson(parsed.spike_rate_per_s * duration_s))
        times = np.sort(rng.uniform(0.0, duration_s, count))
        spikes.extend(Spike(float(t), parsed.spike_amplitude_n) for t in times)
    return tuple(sorted(spikes, key=lambda s: s.t_s))
