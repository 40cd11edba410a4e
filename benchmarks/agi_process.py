"""The morning-peak benchmark's FastAGI server, in a process of its own.

In the bench process it shared one interpreter (and its GIL) with the driver of 200
virtual phones, and the step figures measured the driver as much as the call flow. Here
it runs the absence flow against the benchmark's database and nothing else. It mirrors
to the driver, as JSON lines on stdout, what the harness needs to steer the phones (each
call's start, the names it streams, its end) and every step's latency. It stops when its
stdin closes.

It runs in a session of its own. Where the kernel groups processes by session for CPU
fairness (autogroup, as on this workplace's machines: cgroup v1 with every process in the
root group), a child in the driver's session shared the driver's share of the cores: at
200 calls the driver burns as much CPU as the server, and the server waited for it. In
production the FastAGI server never shares a group with 200 phones (a service has its own
cgroup, and `renraku run` starts Asterisk in a session of its own).
RENRAKU_BENCH_PEAK_SESSION=0 keeps it in the driver's session, for before/after figures.

``python -m benchmarks.agi_process SETTINGS DATABASE_URL``: SETTINGS is the pickled,
base64-encoded Settings of the IVR Asterisk (its FastAGI port and sounds).
RENRAKU_BENCH_PEAK_PROFILE=0 leaves out the confirm's timers and the loop-lag ticker (to
weigh their CPU); RENRAKU_BENCH_PROFILE=<path> writes a cProfile of the server's thread to
<path>.<pid>.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, event

from benchmarks.phones import NOW, StepTimer, bench_voice
from ivr import absence_flow
from ivr.asterisk_runtime import die_with_parent
from ivr.fastagi import AGIChannel, FastAGIServer, played_names
from models.db import create_engine, session_factory
from renraku import eventloop
from renraku.app import App
from renraku.clock import FakeClock


class Outbox:
    """The mirror lines on their way to the driver, kept off the calls' time: each loop
    turn's lines leave in one write, through a non-blocking pipe transport. A blocking
    write and flush a line did cost 3 of the 10 s the server's loop worked in a profiled
    200-call run (a line a syscall, and a driver behind on reading froze every call)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.transport: asyncio.WriteTransport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)

    def put(self, line: str) -> None:
        if not self.lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self.lines.append(line)

    def flush(self) -> None:
        assert self.transport is not None
        self.transport.write("".join(self.lines).encode())
        self.lines = []

    async def close(self) -> None:
        assert self.transport is not None
        while self.lines or self.transport.get_write_buffer_size():  # noqa: ASYNC110 - a transport has no "drained" event
            await asyncio.sleep(0.01)
        self.transport.close()


OUTBOX = Outbox()


def emit(**fields: Any) -> None:
    OUTBOX.put(json.dumps(fields, ensure_ascii=False) + "\n")


class MirroredSteps(StepTimer):
    def add(self, gap_ms: float, digit: bool, next_command: str) -> None:
        emit(k="step", ms=gap_ms, digit=digit, next=next_command)


def mirror(kind: str, agi: AGIChannel, detail: str) -> None:
    if kind == "start":
        emit(k="start", id=agi.uniqueid, caller=agi.caller)
    elif kind == "end":
        emit(k="end", id=agi.uniqueid)
    elif names := played_names(detail):  # a menu's Read: its sounds in one line
        emit(k="play", id=agi.uniqueid, names=names)


class ConfirmProfile:
    """Where a confirm's time goes: each report write (AbsenceCall._write, the confirm key
    to the "recorded" prompt) is timed whole, up to its first statement (session, SQLite's
    write queue, pool) and inside the driver's execute calls (database, aiosqlite's thread
    hop and the wait for the busy loop to resume the call); the rest is ORM and flow
    Python. A ticker measures the event loop's lag (how late a 10 ms sleep wakes up)."""

    TICK_S = 0.01

    def __init__(self, app: App, *engines: Engine) -> None:
        self.open: dict[asyncio.Task[Any], dict[str, float]] = {}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._before)
            event.listen(engine, "after_cursor_execute", self._after)
        original = absence_flow.AbsenceCall._write

        async def timed(call: Any, *args: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            acc = self.open[task] = {"t0": time.perf_counter(), "first": 0.0, "db": 0.0, "n": 0}
            call.bench_task = task
            try:
                return await original(call, *args)
            finally:
                del self.open[task]
                end = time.perf_counter()
                emit(k="confirm", ms=(end - acc["t0"]) * 1000, db_ms=acc["db"] * 1000,
                     before_ms=((acc["first"] or end) - acc["t0"]) * 1000, n=acc["n"])

        absence_flow.AbsenceCall._write = timed  # type: ignore[method-assign]
        if app.call_db is not None:
            app.call_db.run = self._followed(app.call_db.run)  # type: ignore[method-assign]
            app.call_db.run_one = self._followed(app.call_db.run_one)  # type: ignore[method-assign]

    def _followed(self, write: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """On PostgreSQL's write loop (models.call_db) a write runs in a task of that loop:
        its statements count for the confirm of the call that asked for it."""
        async def followed(fn: Callable[[Any], Awaitable[Any]]) -> Any:
            owner = asyncio.current_task()

            async def in_owner(session: Any) -> Any:
                task = asyncio.current_task()
                if task is owner or owner not in self.open:
                    return await fn(session)
                assert task is not None and owner is not None
                self.open[task] = self.open[owner]
                try:
                    return await fn(session)
                finally:
                    del self.open[task]

            return await write(in_owner)

        return followed

    def _acc(self) -> dict[str, float] | None:
        try:
            return self.open.get(asyncio.current_task())  # type: ignore[arg-type]
        except RuntimeError:
            return None

    def _before(self, conn: Any, *_args: Any) -> None:
        if (acc := self._acc()) is not None:
            conn.info["bench_t0"] = now = time.perf_counter()
            acc["first"] = acc["first"] or now

    def _after(self, conn: Any, *_args: Any) -> None:
        if (acc := self._acc()) is not None and "bench_t0" in conn.info:
            acc["db"] += time.perf_counter() - conn.info.pop("bench_t0")
            acc["n"] += 1

    async def tick(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.TICK_S)
            late = (time.perf_counter() - t0 - self.TICK_S) * 1000
            if late > 5:
                emit(k="lag", ms=late)


async def serve(settings: Any, url: str) -> None:
    engine = create_engine(url, pool_size=settings.database_pool_size)
    app = App(settings, FakeClock(NOW), engine, session_factory(engine))
    if os.environ.get("RENRAKU_BENCH_CALL_DB", "1") != "0":  # "0": before/after figures
        app.start_call_database()  # as `renraku run` does
    engines = [engine.sync_engine] + ([app.call_db.sync_engine] if app.call_db else [])
    # "0": without the confirm's timers and the lag ticker, to weigh what they cost
    profile = ConfirmProfile(app, *engines) if os.environ.get(
        "RENRAKU_BENCH_PEAK_PROFILE", "1") != "0" else None
    voice = bench_voice(settings)
    server = FastAGIServer()

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    server.route("absence", handler)
    await absence_flow.warm_up(app)  # as `renraku run` does
    server.listeners += [MirroredSteps().listener, mirror]
    await server.start("127.0.0.1", settings.fastagi_port)
    await OUTBOX.open()
    emit(k="ready")
    ticker = asyncio.ensure_future(profile.tick() if profile else asyncio.sleep(0))
    loop = asyncio.get_running_loop()
    # Blocks a worker thread until the driver closes our stdin
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    await server.stop(grace_s=2)
    ticker.cancel()
    await app.close()
    await OUTBOX.close()


class _Mirror:
    """Stands in for a call's AGIChannel in the harness's records (``caller``, ``streamed``)."""

    def __init__(self, caller: str) -> None:
        self.caller = caller
        self.streamed: list[str] = []
        self.heard: list[float] = []  # when each streamed line arrived (perf_counter)


class AgiProcess:
    """The driver's side: starts the server process in place of the harness's in-process
    FastAGI server and feeds its mirror lines to the harness (``PhoneLines._on_agi``), so
    VirtualPhone.call / wait_prompt / wait_end work unchanged."""

    def __init__(self, lines: Any) -> None:
        self.lines = lines
        self.calls: dict[str, _Mirror] = {}
        self.timer: StepTimer | None = None  # steps go here while set
        self.confirms: list[dict[str, float]] = []  # ConfirmProfile lines, while timing
        self.lags: list[float] = []  # event-loop lags over 5 ms, while timing

    async def start(self, url: str) -> AgiProcess:
        await self.lines.fastagi.stop(grace_s=0)  # frees the port the IVR Asterisk dials
        blob = base64.b64encode(pickle.dumps(self.lines.settings)).decode()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.agi_process", blob, url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20, preexec_fn=die_with_parent,
            start_new_session=os.environ.get("RENRAKU_BENCH_PEAK_SESSION", "1") != "0")
        assert self.proc.stdout is not None
        ready = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if json.loads(ready or b"{}").get("k") != "ready":
            raise RuntimeError("benchmark FastAGI process did not start (see its stderr)")
        self._reader = asyncio.ensure_future(self._read())
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            m = json.loads(line)
            kind = m["k"]
            if kind in ("step", "confirm", "lag"):
                if self.timer is not None:
                    if kind == "step":
                        self.timer.add(m["ms"], m["digit"], m["next"])
                    elif kind == "confirm":
                        self.confirms.append(m)
                    else:
                        self.lags.append(m["ms"])
                continue
            if kind == "start":
                self.calls[m["id"]] = _Mirror(m["caller"])
            call = self.calls[m["id"]]
            if kind == "play":
                call.streamed += m["names"]
                call.heard += [time.perf_counter()] * len(m["names"])
            self.lines._on_agi("command" if kind == "play" else kind, call, "")
            if kind == "end":
                del self.calls[m["id"]]

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader


if __name__ == "__main__":
    main = serve(pickle.loads(base64.b64decode(sys.argv[1])), sys.argv[2])
    if out := os.environ.get("RENRAKU_BENCH_PROFILE"):
        import cProfile
        cProfile.run("eventloop.run(main)", f"{out}.{os.getpid()}")
    else:
        eventloop.run(main)
