"""Dialer: how many channels one node sustains, and what each part costs per channel.

A campaign against the carrier simulator at C = 30, 60 and 120 channels on one IVR node,
then at C = 60 spread over two IVR nodes behind Kamailio (one dialer per node, the cap held
through the database), to check the capacity model's prediction for two nodes. Every
household answers, listens and presses 1 for the survey question. The parts run as the
production processes do: the IVR Asterisk, the FastAGI app node (tests/city_node.py, the
broadcast flow on this database) and the dialer (the same, ``dialer``), each its own
process, so the CPU-seconds of each are read from /proc.

Per level: N = RENRAKU_BENCH_DIALER_PER_CHANNEL (8) households per channel, so each level
takes about 8 call lengths (~90 s) whatever C is. Utilisation = channel-seconds ÷ (C × wall);
"steady" leaves out the ramp (until C calls are up) and the tail (after the last
originate). CPU per channel = CPU-seconds ÷ channel-seconds (% of one core that a busy
channel costs); per call = CPU-seconds ÷ calls.

Knobs: RENRAKU_BENCH_DIALER_C ("30,60,120"), RENRAKU_BENCH_DIALER_PER_CHANNEL (8),
RENRAKU_BENCH_DIALER_N (households per level, instead of C × PER_CHANNEL),
RENRAKU_BENCH_DIALER_TWO_NODES (channels of the two-node run, 60; 0: none),
RENRAKU_BENCH_DIALER_PLAN ("answer:5:1wwww1…", see PLAN).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import save, table

LEVELS = [int(c) for c in os.environ.get("RENRAKU_BENCH_DIALER_C", "30,60,120").split(",") if c]
PER_CHANNEL = int(os.environ.get("RENRAKU_BENCH_DIALER_PER_CHANNEL", "8"))
FIXED_N = int(os.environ.get("RENRAKU_BENCH_DIALER_N", "0"))
TWO_NODES = int(os.environ.get("RENRAKU_BENCH_DIALER_TWO_NODES", "60"))
# The household answers, says hello (0.5 s), listens 5 s, then presses 1 every 2.25 s
# for 18 s. With the tones below an idle node starts the question ~5 s after the answer
# (AMD ~1.4 s, school intro, message, "press 0 to hear again" and its 2.5 s wait), but a
# loaded one up to 16 s later (measured at C = 120): one key at a fixed time mostly fell
# in that wait or before it. A 1 there, in the read-back or in its "2 to change" is no
# answer and changes nothing, so the household answers whenever the question comes.
PLAN = os.environ.get("RENRAKU_BENCH_DIALER_PLAN", "answer:5:1" + "wwww1" * 7)
ORIGINATES_PER_S = 40.0  # not the limit: 120 channels of 10 s calls need 12 a second
TEXT_S = 0.3  # the message and the question's text
QUESTION = [{"text": {"ja": "参加しますか"},
             "options": [{"digit": 1, "label": {"ja": "はい"}},
                         {"digit": 2, "label": {"ja": "いいえ"}}]}]
# Three Asterisks (two nodes and the carrier) in the two-node run, hundreds of calls each;
# away from the tests' ranges (20000 and up).
RTP = itertools.cycle([(10000, 13332), (13334, 16666), (16668, 19998)])
DIALER_CONFIG = {"ring_timeout_s": 15, "answer_grace_s": 1.0}


class Voice:
    """Fixed-length tones: each phrase and each text 0.3 s (TTS is not measured here)."""

    def __init__(self, sounds: Path) -> None:
        self.dir = sounds / "bench"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.names: dict[str, str] = {}

    async def _tone(self, name: str, seconds: float) -> str:
        path = self.dir / f"{name}.wav"
        if not path.exists():
            # Own name per process, then renamed: app nodes render the same tone side by side
            tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
            proc = await asyncio.create_subprocess_exec(
                "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tmp), "synth",
                str(seconds), "sine", "600", "vol", "0.3")
            await proc.wait()
            tmp.replace(path)
        return f"bench/{name}"

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        return await self._tone(f"{key.replace('.', '_')}-{lang}", 0.3)

    async def text(self, lang: str, text: str) -> str:
        n = self.names.setdefault(text, f"text{len(self.names)}")
        return await self._tone(f"{n}-{lang}", TEXT_S)

    async def recording(self, key: str, lang: str) -> str | None:
        return None


@dataclass
class Channels:
    """Campaign channels (the IVR's legs to the carrier) from AMI Newchannel/Hangup."""

    up: dict[str, float] = field(default_factory=dict)
    spans: list[tuple[float, float]] = field(default_factory=list)

    def listen(self, ami: Any) -> None:
        ami.register_event("Newchannel", self._event)
        ami.register_event("Hangup", self._event)

    def _event(self, _manager: Any, ev: Any) -> None:
        uid, kind = ev.get("Uniqueid", ""), ev.get("Event")
        if kind == "Newchannel" and ev.get("Channel", "").startswith("PJSIP/carrier"):
            self.up[uid] = time.perf_counter()
        elif kind == "Hangup" and uid in self.up:
            self.spans.append((self.up.pop(uid), time.perf_counter()))

    def since(self, t0: float) -> list[tuple[float, float]]:
        return [s for s in self.spans if s[0] >= t0]


def busy_between(spans: list[tuple[float, float]], a: float, b: float) -> float:
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans)


def steady_window(spans: list[tuple[float, float]], channels: int) -> tuple[float, float]:
    """From the moment C calls are up to the last call's start (ramp and tail left out)."""
    starts = sorted(s for s, _ in spans)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level, full = 0, starts[0]
    for t, step in events:
        level += step
        if level >= channels:
            full = t
            break
    return full, max(starts[-1], full)


def cpu(pids: dict[str, int | None]) -> dict[str, float]:
    from benchmarks.phones import cpu_seconds

    return {part: cpu_seconds(pid) for part, pid in pids.items()}


async def campaign(app: Any, numbers: list[str], carrier: Any) -> int:
    """A school of one family per number, a survey campaign to all (a draft: see launch)."""
    from benchmarks.phones import families
    from models.db import transaction
    from renraku.services import broadcast as bc
    from tests.factories import morning_zone

    now = app.clock.now()
    school_id = await families(app, ["+" + x for x in numbers], timezone=morning_zone(now))
    async with transaction(app.sessions) as s:
        sid = (await bc.create_survey(s, school_id, "q", QUESTION, now)).id
        camp = await bc.create_campaign(
            s, app.settings, school_id=school_id, title="bench", target={"school": True},
            now=now, message={"ja": "明日は遠足です"}, survey_id=sid)
    for i in range(0, len(numbers), 100):  # the carrier's answer plans, 100 actions in flight
        await asyncio.gather(*(carrier.household(x, PLAN) for x in numbers[i:i + 100]))
    return camp.id


async def launch(app: Any, cid: int) -> None:
    """Hand the campaign to the dialers, which are already up (their start is not timed)."""
    from models import Campaign
    from models.db import transaction
    from renraku.services import broadcast as bc

    async with transaction(app.sessions) as s:
        await bc.launch(s, app.settings, await s.get_one(Campaign, cid), app.clock.now())


async def until_done(app: Any, cid: int, n: int, started: float) -> None:
    from renraku.services import broadcast as bc

    async with asyncio.timeout(max(600, n * 3)):
        shown = time.perf_counter()
        while True:
            async with app.sessions() as s:
                state = await bc.progress(s, cid)
            if state.status == "completed":
                return
            if time.perf_counter() - shown > 30:
                shown = time.perf_counter()
                print(f"    {state.final}/{n} households done after {shown - started:.0f} s",
                      file=sys.stderr)
            await asyncio.sleep(0.5)


async def outcome(app: Any, cid: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from models import CallAttempt, Campaign, CampaignHousehold, SurveyQuestion, SurveyResponse

    async with app.sessions() as s:
        ids = select(CampaignHousehold.id).where(CampaignHousehold.campaign_id == cid)
        attempts = await s.scalar(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.household_id.in_(ids))) or 0
        survey = select(Campaign.survey_id).where(Campaign.id == cid).scalar_subquery()
        answers = await s.scalar(select(func.count()).select_from(SurveyResponse).join(
            SurveyQuestion, SurveyQuestion.id == SurveyResponse.question_id).where(
            SurveyQuestion.survey_id == survey)) or 0
        statuses = dict((await s.execute(select(CampaignHousehold.status, func.count()).where(
            CampaignHousehold.campaign_id == cid).group_by(CampaignHousehold.status))).all())
    return {"calls": attempts, "survey_answers": answers, "statuses": statuses}


def figures(channels: int, n: int, wall: float, spans: list[tuple[float, float]],
            cpu_s: dict[str, float]) -> dict[str, Any]:
    lengths = [e - s for s, e in spans]
    busy = sum(lengths)
    mean_len = busy / max(len(lengths), 1)
    a, b = steady_window(spans, channels)
    row: dict[str, Any] = {
        "households": n, "channels": channels, "wall_s": wall,
        "ideal_s": n * mean_len / channels, "call_s_mean": mean_len,
        "utilisation_pct": 100 * busy / (channels * wall),
        "steady_utilisation_pct": 100 * busy_between(spans, a, b) / (channels * (b - a))
        if b > a else float("nan"),
        "channel_s": busy, "cpu_s": cpu_s,
        # % of one core per busy channel, and ms of CPU per call, for each process
        "cpu_pct_per_channel": {p: 100 * c / busy for p, c in cpu_s.items()},
        "cpu_ms_per_call": {p: 1000 * c / max(len(lengths), 1) for p, c in cpu_s.items()},
    }
    row["wall_over_ideal"] = wall / row["ideal_s"] if row["ideal_s"] else float("nan")
    return row


async def one_node(levels: list[int]) -> list[dict[str, Any]]:
    import tests.asterisk_harness as harness
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import SystemClock
    from tests.city_node import spawn

    harness.rtp_range = lambda: next(RTP)
    harness._guard()
    lines = harness.PhoneLines(Path(tempfile.mkdtemp(prefix="renraku-bench-dialer-")))
    await lines.start()
    rows = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url = f"sqlite+aiosqlite:///{lines.base / 'dialer.db'}"
        await upgrade(url)
        engine = create_engine(url)
        settings = lines.settings.replace(
            database_url=url, dialer_retry_delay_s=1, dialer_max_attempts=3,
            dialer_originates_per_second=ORIGINATES_PER_S, node_name="app1")
        app = App(settings, SystemClock(), engine, session_factory(engine))
        # The app node in its own process, on the port the IVR's dialplan calls.
        await lines.fastagi.stop(grace_s=0)
        agi = await asyncio.to_thread(spawn, "app", settings, "127.0.0.1",
                                      str(settings.fastagi_port), "2026-12-03T07:30:00+09:00",
                                      log=lines.base / "app.log")
        procs.append(agi)
        chans = Channels()
        chans.listen(lines.ivr_ami)
        for level, channels in enumerate(levels):
            n = FIXED_N or channels * PER_CHANNEL
            numbers = [f"81907{level}{i:06d}" for i in range(n)]
            dialer = await asyncio.to_thread(
                spawn, "dialer", settings.replace(dialer_max_channels=channels),
                json.dumps(DIALER_CONFIG), log=lines.base / f"dialer-{channels}.log")
            procs.append(dialer)
            pids = {"asterisk": lines.ivr.pid(), "dialer": dialer.pid, "fastagi": agi.pid,
                    "carrier": lines.carrier.pid(), "bench": os.getpid()}
            cid = await campaign(app, numbers, lines)
            print(f"  dialer: C = {channels}, {n} households ready", file=sys.stderr)
            load = os.getloadavg()[0]
            started = time.perf_counter()
            cpu0 = cpu(pids)  # the campaign's setup is not the calls' cost
            await launch(app, cid)
            await until_done(app, cid, n, started)
            wall = time.perf_counter() - started
            spent = {p: c - cpu0[p] for p, c in cpu(pids).items()}
            dialer.terminate()
            dialer.wait(10)
            row = figures(channels, n, wall, chans.since(started), spent)
            row.update(await outcome(app, cid), nodes=1, load_1min=[load, os.getloadavg()[0]])
            rows.append(row)
        await engine.dispose()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        await lines.stop()
    return rows


async def two_nodes(channels: int) -> dict[str, Any]:
    """C channels over two IVR nodes behind Kamailio, a dialer on each node's AMI."""
    import tests.asterisk_harness as harness
    from models.db import create_engine, session_factory
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import SystemClock
    from tests.cluster_harness import ProcessCity
    from tests.test_absence_calls import THU, jst

    harness.rtp_range = lambda: next(RTP)
    harness._guard()
    base = Path(tempfile.mkdtemp(prefix="renraku-bench-city-"))
    url = f"sqlite+aiosqlite:///{base / 'dialer.db'}"
    await upgrade(url)
    city = ProcessCity(base, url, jst(THU, 7, 30))
    await city.start()
    try:
        engine = create_engine(url)
        app = App(city.settings.replace(database_url=url, dialer_max_channels=channels),
                  SystemClock(), engine, session_factory(engine))
        chans = {name: Channels() for name in city.node_ami}
        for name, ami in city.node_ami.items():
            chans[name].listen(ami)
        n = FIXED_N or channels * PER_CHANNEL
        numbers = [f"819079{i:06d}" for i in range(n)]
        cid = await campaign(app, numbers, city)
        knobs = {"dialer_max_channels": channels, "dialer_retry_delay_s": 1,
                 "dialer_max_attempts": 3, "dialer_originates_per_second": ORIGINATES_PER_S / 2}
        dialers = [await city.start_dialer(node, f"app{i + 1}", DIALER_CONFIG, **knobs)
                   for i, node in enumerate(city.nodes)]
        pids: dict[str, int | None] = {
            **{f"asterisk {n}": node.pid() for n, node in city.nodes.items()},
            **{f"dialer {i + 1}": d.pid for i, d in enumerate(dialers)},
            **{f"fastagi {i + 1}": p.pid for i, p in enumerate(city.app_procs) if p},
            "kamailio": city.kamailio.pid() if city.kamailio else None,
            "carrier": city.carrier.pid(), "bench": os.getpid()}
        load = os.getloadavg()[0]
        started = time.perf_counter()
        cpu0 = cpu(pids)
        await launch(app, cid)
        await until_done(app, cid, n, started)
        wall = time.perf_counter() - started
        spent = {p: c - cpu0[p] for p, c in cpu(pids).items()}
        spans = [s for c in chans.values() for s in c.since(started)]
        row = figures(channels, n, wall, spans, spent)
        row.update(await outcome(app, cid), nodes=2,
                   calls_per_node={name: len(c.since(started)) for name, c in chans.items()},
                   load_1min=[load, os.getloadavg()[0]])
        await engine.dispose()
        return row
    finally:
        await city.stop()


def parts(row: dict[str, Any]) -> dict[str, float]:
    """CPU-seconds of the product's parts, summed over nodes (asterisk, dialer, fastagi)."""
    out = {"asterisk": 0.0, "dialer": 0.0, "fastagi": 0.0}
    for name, secs in row["cpu_s"].items():
        kind = name.split()[0]
        if kind in out:
            out[kind] += secs
    return out


def model(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The capacity model from the one-node levels, fitted on all of them together. Every
    part's CPU follows the calls, not the channel-seconds: Asterisk's per call stayed at
    48-53 ms whether calls lasted 13 or 21 s (AMD, the AGI session, ten playbacks; a call's
    media is a few % of a core per hundred channels at most), and the dialer's and
    FastAGI's are per call by nature (originate, events, flow, ~10 writes). So capacity is
    a call rate; per channel it is that rate times the call's length. The per-channel
    figure of the levels is kept as an upper bound (it charges each call's cost to its
    channel-seconds: shorter calls cost more per channel)."""
    channel_s = sum(r["channel_s"] for r in rows)
    calls = sum(r["households"] for r in rows)
    total = {k: sum(parts(r)[k] for r in rows) for k in ("asterisk", "dialer", "fastagi")}
    return {"asterisk_cpu_ms_per_call": 1000 * total["asterisk"] / calls,
            "dialer_cpu_ms_per_call": 1000 * total["dialer"] / calls,
            "fastagi_cpu_ms_per_call": 1000 * total["fastagi"] / calls,
            "app_cpu_ms_per_call": 1000 * (total["dialer"] + total["fastagi"]) / calls,
            "asterisk_pct_core_per_channel_max": max(
                100 * parts(r)["asterisk"] / r["channel_s"] for r in rows),
            "asterisk_pct_core_per_channel_all": 100 * total["asterisk"] / channel_s}


def predict(m: dict[str, Any], one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """What the model says of the two-node run, from the one-node run at the same C: the
    same utilisation (the cap is the trunk's, the dialers share it), each node's Asterisk
    takes the calls Kamailio sends it, the app parts cost the same per call."""
    per_node = two["calls_per_node"]
    predicted = {
        "wall_s": two["households"] * two["call_s_mean"] / two["channels"]
        / (one["utilisation_pct"] / 100),
        **{f"asterisk_cpu_s {n}": c * m["asterisk_cpu_ms_per_call"] / 1000
           for n, c in per_node.items()},
        "app_cpu_s": two["households"] * m["app_cpu_ms_per_call"] / 1000,
    }
    measured = {"wall_s": two["wall_s"],
                **{f"asterisk_cpu_s {n}": two["cpu_s"][f"asterisk {n}"] for n in per_node},
                "app_cpu_s": parts(two)["dialer"] + parts(two)["fastagi"]}
    return {"predicted": predicted, "measured": measured,
            "ratio": {k: measured[k] / predicted[k] for k in predicted}}


async def main() -> dict[str, object]:
    rows = await one_node(LEVELS)
    m = model(rows)
    result: dict[str, Any] = {"plan": PLAN, "levels": rows, "model": m}
    if TWO_NODES:
        two = await two_nodes(TWO_NODES)
        result["two_nodes"] = two
        same = next((r for r in rows if r["channels"] == TWO_NODES), rows[-1])
        result["two_nodes_check"] = predict(m, same, two)
    shown = [*rows, *([result["two_nodes"]] if TWO_NODES else [])]
    print(table(
        f"Dialer: plan {PLAN!r}, {PER_CHANNEL} households per channel",
        ["nodes", "C", "households", "wall s", "wall/ideal", "util %", "steady util %",
         "call s", "Asterisk %/ch", "dialer ms/call", "FastAGI ms/call", "answers", "load"],
        [[r["nodes"], r["channels"], r["households"], r["wall_s"], r["wall_over_ideal"],
          r["utilisation_pct"], r["steady_utilisation_pct"], r["call_s_mean"],
          100 * parts(r)["asterisk"] / r["channel_s"],
          1000 * parts(r)["dialer"] / r["households"],
          1000 * parts(r)["fastagi"] / r["households"], r["survey_answers"],
          f"{r['load_1min'][0]:.0f}-{r['load_1min'][1]:.0f}"] for r in shown]))
    print(f"  model, CPU per call: Asterisk {m['asterisk_cpu_ms_per_call']:.1f} ms, dialer "
          f"{m['dialer_cpu_ms_per_call']:.1f} ms, FastAGI {m['fastagi_cpu_ms_per_call']:.1f} ms; "
          f"Asterisk per channel at most {m['asterisk_pct_core_per_channel_max']:.2f} % of a core")
    if TWO_NODES:
        check = result["two_nodes_check"]
        for key in check["predicted"]:
            print(f"  two nodes, {key}: predicted {check['predicted'][key]:.1f}, measured "
                  f"{check['measured'][key]:.1f} (× {check['ratio'][key]:.2f})")
    path = save("dialer", result)
    print(f"-> {path}\n")
    return result


if __name__ == "__main__":
    asyncio.run(main())
