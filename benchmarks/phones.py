"""Shared set-up for the telephone benchmarks: the IVR and carrier-simulator Asterisks
(tests/asterisk_harness.PhoneLines) with wide RTP ranges, a database of families, CPU."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks.stats import percentile
from ivr.call_metrics import step_ms, time_replies
from ivr.fastagi import AGIChannel

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 3, 7, 30, tzinfo=TOKYO)  # a Thursday, the morning peak
TICK = os.sysconf("SC_CLK_TCK")
# The harness gives each Asterisk a 38-port RTP range (19 calls); the benches need hundreds.
WIDE_RTP = itertools.cycle([(10000, 14998), (15000, 19998)])


def cpu_seconds(pid: int | None, kernel_only: bool = False) -> float:
    """utime + stime + children's (cutime + cstime) from /proc/<pid>/stat (0 if gone);
    ``kernel_only``: stime + cstime, the time spent in system calls (sockets, wake-ups)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    wanted = fields[12:15:2] if kernel_only else fields[11:15]
    return sum(int(x) for x in wanted) / TICK


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU-seconds of ``pid`` and every live descendant (Kamailio's workers are children
    that run until it stops, so their time is in no cutime yet); each process's own
    cutime + cstime adds its children already reaped."""
    if not pid:
        return 0.0
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone between the listing and the read
        parent[int(stat.parent.name)] = int(fields[1])
    tree, todo = {pid}, [pid]
    while todo:
        mine = todo.pop()
        kids = [p for p, pp in parent.items() if pp == mine and p not in tree]
        tree.update(kids)
        todo += kids
    return sum(cpu_seconds(p) for p in tree)


async def start_lines():  # type: ignore[no-untyped-def]
    """PhoneLines with wide RTP ranges (patched here, not in the harness)."""
    import tests.asterisk_harness as harness

    harness.rtp_range = lambda: next(WIDE_RTP)
    harness._guard()
    lines = harness.PhoneLines(Path(tempfile.mkdtemp(prefix="renraku-bench-phones-")))
    await lines.start()
    return lines


@dataclass
class StepTimer:
    """Per-step latency inside the FastAGI server: the moment a reply line arrives from
    Asterisk to the moment the flow writes its next command. Steps whose reply carried a
    key the caller pressed (during a prompt or while the flow waited for one) are kept
    apart: that is the figure callers feel."""

    all_ms: list[float] = field(default_factory=list)
    digit_ms: list[float] = field(default_factory=list)
    slow: dict[str, int] = field(default_factory=dict)  # next command of steps over 50 ms

    def listener(self, kind: str, agi: AGIChannel, detail: str) -> None:
        if kind == "start":
            time_replies(agi)
        elif kind == "command" and (step := step_ms(agi, detail)) is not None:
            self.add(step[0], step[1], " ".join(detail.split('"')[:2]).strip()[:60])

    def add(self, gap_ms: float, digit: bool, next_command: str) -> None:
        self.all_ms.append(gap_ms)
        if digit:
            self.digit_ms.append(gap_ms)
            if gap_ms > 50:
                self.slow[next_command] = self.slow.get(next_command, 0) + 1

    def summary(self) -> dict[str, float]:
        return {"step_p50_ms": percentile(self.digit_ms, 50),
                "step_p99_ms": percentile(self.digit_ms, 99),
                "step_max_ms": max(self.digit_ms, default=float("nan")),
                "all_steps_p99_ms": percentile(self.all_ms, 99), "steps": len(self.digit_ms),
                "slow_steps_next_command": dict(sorted(self.slow.items(),
                                                       key=lambda kv: -kv[1])[:5])}


async def families(app, numbers: list[str], **school: object) -> int:  # type: ignore[no-untyped-def]
    """One school (``school``: its columns); one child and one guardian per number; the
    school's id. Inserted in bulk: the tests' factories flush row by row (2,000 families
    took 21 s)."""
    from models import Child, Guardian, GuardianPhone, Guardianship
    from models.db import transaction
    from renraku.rules.phone import normalise
    from tests.factories import make_school

    async with transaction(app.sessions) as s:
        home = await make_school(s, "ベンチ小学校", **school)
        kids = [Child(school_id=home.id, name=f"児童{i}", reading=f"じどう{i}",
                      display_name=f"児童{i}") for i in range(len(numbers))]
        parents = [Guardian(name=f"保護者{i}", language="ja") for i in range(len(numbers))]
        s.add_all([*kids, *parents])
        await s.flush()
        for kid, parent, raw in zip(kids, parents, numbers, strict=True):
            number = normalise(raw)
            s.add(GuardianPhone(guardian_id=parent.id, e164=number.e164, kind=number.kind,
                                verified=True))
            s.add(Guardianship(child_id=kid.id, guardian_id=parent.id, position=1))
        return home.id


def bench_voice(settings):  # type: ignore[no-untyped-def]
    """The tests' ToneVoice (a short tone per prompt) with one tone per prompt key, even
    for phrases with fields (a child's name, a date), written once and off the event loop.

    ToneVoice runs sox synchronously for every new (key, fields) pair: in a 100-call run
    that is hundreds of sox runs in the middle of the calls, which measured sox, not the
    flow. The real PromptVoice speaks names and dates through TTS on first use (async,
    cached by text); that cost is the prompts package's and is not part of these figures."""
    import asyncio

    from tests.absence_fakes import ToneVoice, _tone

    locks: dict[object, asyncio.Lock] = {}
    made: set[tuple[str, str]] = set()  # no stat() per phrase: that would be the bench's CPU

    class BenchVoice(ToneVoice):
        async def phrase(self, key: str, lang: str, **fmt: object) -> str:
            name = f"renraku/dyn/{key}" if fmt else f"renraku/{key}"
            if (lang, name) not in made:
                path = self.sounds / lang / f"{name}.wav"
                if not path.exists():
                    async with locks.setdefault(path, asyncio.Lock()):
                        await asyncio.to_thread(_tone, path)
                made.add((lang, name))
            return name

    return BenchVoice(settings)


async def carrier_ami_pool(lines, size: int = 48):  # type: ignore[no-untyped-def]
    """Extra AMI sessions to the carrier simulator. Asterisk runs one AMI session's
    actions one after another, and PlayDTMF holds its session for the key's duration:
    through the harness's single session, 200 callers' key presses queue behind each other
    (measured: ~0.75 s of queueing per call, so 100 calls took 75 s and 200 timed out)."""
    from ivr.ami import AMIClient

    return [await AMIClient("127.0.0.1", lines.carrier_ami_port, "carrier",
                            lines.carrier_secret, events="off").start() for _ in range(size)]


async def pooled_press(phone, pool, digits: str, gap: float) -> float:  # type: ignore[no-untyped-def]
    """A phone's key presses through one of the pooled sessions; returns when the first key
    was played into the call (perf_counter)."""
    ami = pool[hash(phone.id) % len(pool)]
    sent = []
    for digit in digits:
        await ami.send_action({"Action": "PlayDTMF", "Channel": phone.channel,
                               "Digit": digit, "Duration": "150"})
        sent.append(time.perf_counter())
        await asyncio.sleep(gap)
    return sent[0]


def pooled_phone(lines, number: str, pool, dialled: str = "0120000000"):  # type: ignore[no-untyped-def]
    """A harness VirtualPhone whose key presses go through one of the pooled sessions."""
    from tests.asterisk_harness import VirtualPhone

    class PooledPhone(VirtualPhone):
        context = "listener"  # never plays a sound: no polling dialplan on the carrier

        async def press(self, digits: str, gap: float = 0.3) -> float:  # type: ignore[override]
            return await pooled_press(self, pool, digits, gap)

        def heard_at(self, index: int) -> float:
            """When the driver learnt that the ``index``-th sound started (perf_counter)."""
            return self.agi.heard[index]  # type: ignore[no-any-return]

    return PooledPhone(lines, number, dialled)
