"""Dialer: one campaign against the carrier simulator with C channels. Every household
answers, listens and presses 1 for the survey question. Compares the wall time with the
ideal C-limited time (N × mean call length / C) and measures channel utilisation,
originates/s and database writes per call.

2,000 households by default (``RENRAKU_BENCH_DIALER_N`` for fewer while working on it).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import percentile, save, table

N = int(os.environ.get("RENRAKU_BENCH_DIALER_N", "2000"))
CHANNELS = int(os.environ.get("RENRAKU_BENCH_DIALER_C", "30"))
# The household answers, says hello (0.5 s), listens 5 s and presses 1. With the tones
# below the question starts ~5 s after the answer (AMD ~1.4 s, school intro, message,
# "press 0 to hear again" and its 2.5 s wait), so the key lands in the question.
PLAN = os.environ.get("RENRAKU_BENCH_DIALER_PLAN", "answer:5:1")
TEXT_S = 0.3  # the message and the question's text
QUESTION = [{"text": {"ja": "参加しますか"},
             "options": [{"digit": 1, "label": {"ja": "はい"}},
                         {"digit": 2, "label": {"ja": "いいえ"}}]}]


class Voice:
    """Fixed-length tones: each phrase and each text 0.3 s (TTS is not measured here)."""

    def __init__(self, sounds: Path) -> None:
        self.dir = sounds / "bench"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.names: dict[str, str] = {}

    async def _tone(self, name: str, seconds: float) -> str:
        path = self.dir / f"{name}.wav"
        if not path.exists():
            proc = await asyncio.create_subprocess_exec(
                "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth",
                str(seconds), "sine", "600", "vol", "0.3")
            await proc.wait()
        return f"bench/{name}"

    async def phrase(self, key: str, lang: str, **fmt: Any) -> str:
        return await self._tone(f"{key.replace('.', '_')}-{lang}", 0.3)

    async def text(self, lang: str, text: str) -> str:
        n = self.names.setdefault(text, f"text{len(self.names)}")
        return await self._tone(f"{n}-{lang}", TEXT_S)

    async def recording(self, key: str, lang: str) -> str | None:
        return None


async def main() -> dict[str, object]:
    from sqlalchemy import event, func, select

    from benchmarks.phones import families, start_lines
    from ivr.broadcast_flow import BroadcastCall
    from ivr.dialer import Dialer, DialerConfig, PanoramiskPort
    from ivr.fastagi import Hangup
    from models import CallAttempt, CampaignHousehold, SurveyResponse
    from models.db import create_engine, session_factory, transaction
    from models.migrate import upgrade
    from renraku.app import App
    from renraku.clock import SystemClock
    from renraku.services import broadcast as bc
    from tests.factories import morning_zone

    setup_t0 = time.perf_counter()
    lines = await start_lines()
    try:
        db = Path(tempfile.mkdtemp(prefix="renraku-bench-dialer-")) / "dialer.db"
        url = f"sqlite+aiosqlite:///{db}"
        await upgrade(url)
        engine = create_engine(url)
        settings = lines.settings.replace(
            dialer_max_channels=CHANNELS, dialer_originates_per_second=10.0,
            dialer_retry_delay_s=1, dialer_max_attempts=3, database_url=url)
        app = App(settings, SystemClock(), engine, session_factory(engine))
        voice = Voice(settings.sounds_dir)

        async def handler(agi):  # type: ignore[no-untyped-def]
            await BroadcastCall(agi, app, voice, Hangup).run()

        lines.route("broadcast", handler)
        numbers = [f"81907{i:07d}" for i in range(N)]
        now = app.clock.now()
        school_id = await families(app, ["+" + x for x in numbers], timezone=morning_zone(now))
        async with transaction(app.sessions) as s:
            sid = (await bc.create_survey(s, school_id, "q", QUESTION, now)).id
            camp = await bc.create_campaign(
                s, settings, school_id=school_id, title="bench", target={"school": True},
                now=now, message={"ja": "明日は遠足です"}, survey_id=sid)
        for i in range(0, N, 100):  # the carrier's answer plans, 100 AMI actions in flight
            await asyncio.gather(*(lines.household(x, PLAN) for x in numbers[i:i + 100]))
        # Count the SQL writes of the dialer and the call flow (both in this process).
        writes = {"n": 0}

        def count(_conn, _cursor, statement: str, *_a) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                writes["n"] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        up: dict[str, float] = {}
        spans: list[tuple[float, float]] = []

        def on_event(_m, ev) -> None:  # type: ignore[no-untyped-def]
            uid, kind = ev.get("Uniqueid", ""), ev.get("Event")
            if kind == "Newchannel" and ev.get("Channel", "").startswith("PJSIP/carrier"):
                up[uid] = time.perf_counter()
            elif kind == "Hangup" and uid in up:
                spans.append((up.pop(uid), time.perf_counter()))

        lines.ivr_ami.register_event("Newchannel", on_event)
        lines.ivr_ami.register_event("Hangup", on_event)
        dialer = Dialer(app, PanoramiskPort(lines.ivr_ami),
                        DialerConfig(ring_timeout_s=15, answer_grace_s=1.0))
        async with transaction(app.sessions) as s:
            await bc.launch(s, settings, await s.get_one(type(camp), camp.id), app.clock.now())
        stop = asyncio.Event()
        started = time.perf_counter()
        print(f"  dialer: {N} households ready after {started - setup_t0:.0f} s",
              file=sys.stderr)
        task = asyncio.ensure_future(dialer.run(stop))
        try:
            async with asyncio.timeout(max(600, N * 3)):
                shown = 0.0
                while True:
                    async with app.sessions() as s:
                        state = await bc.progress(s, camp.id)
                    if state.status == "completed":
                        break
                    if time.perf_counter() - shown > 30:  # a progress line for a long run
                        shown = time.perf_counter()
                        print(f"  dialer: {state.final}/{N} households done after "
                              f"{shown - started:.0f} s", file=sys.stderr)
                    await asyncio.sleep(0.5)
        finally:
            stop.set()
            await task
        wall = time.perf_counter() - started
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        async with app.sessions() as s:
            attempts = await s.scalar(select(func.count()).select_from(CallAttempt)) or 0
            answers = await s.scalar(select(func.count()).select_from(SurveyResponse)) or 0
            statuses = dict((await s.execute(select(
                CampaignHousehold.status, func.count()).group_by(
                CampaignHousehold.status))).all())
        await engine.dispose()
    finally:
        await lines.stop()
    lengths = [b - a for a, b in spans]
    mean_len = sum(lengths) / max(len(lengths), 1)
    ideal = N * mean_len / CHANNELS
    busy = sum(lengths)
    row = {"households": N, "channels": CHANNELS, "plan": PLAN, "wall_s": wall,
           "ideal_s": ideal, "wall_over_ideal": wall / ideal if ideal else float("nan"),
           "utilisation_pct": 100 * busy / (CHANNELS * wall), "calls": attempts,
           "originates_per_s": dialer.originated / wall, "call_s_mean": mean_len,
           "call_s_p99": percentile(lengths, 99), "survey_answers": answers,
           "db_writes_per_call": writes["n"] / max(attempts, 1), "statuses": statuses}
    print(f"  statuses: {statuses}", file=sys.stderr)
    print(table(f"Dialer: {N} households, {CHANNELS} channels, plan {PLAN!r}",
                ["households", "wall s", "ideal s", "wall/ideal", "utilisation %",
                 "originates/s", "call s (mean)", "answers", "DB writes/call"],
                [[N, wall, ideal, row["wall_over_ideal"], row["utilisation_pct"],
                  row["originates_per_s"], mean_len, answers, row["db_writes_per_call"]]]))
    path = save("dialer", row)
    print(f"-> {path}\n")
    return row


if __name__ == "__main__":
    asyncio.run(main())
