"""The morning-peak benchmark's FastAGI server, in a process of its own.

In the bench process it shared one interpreter (and its GIL) with the driver of 200
virtual phones, and the step figures measured the driver as much as the call flow. Here
it runs the absence flow against the benchmark's database and nothing else. It mirrors
to the driver, as JSON lines on stdout, what the harness needs to steer the phones (each
call's start, the names it streams, its end) and every step's latency. It stops when its
stdin closes.

``python -m benchmarks.agi_process SETTINGS DATABASE_URL``: SETTINGS is the pickled,
base64-encoded Settings of the IVR Asterisk (its FastAGI port and sounds).
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import sys
from typing import Any

from benchmarks.phones import NOW, StepTimer, bench_voice
from ivr import absence_flow
from ivr.fastagi import AGIChannel, FastAGIServer, played_name
from models.db import create_engine, session_factory
from renraku.app import App
from renraku.clock import FakeClock


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class MirroredSteps(StepTimer):
    def add(self, gap_ms: float, digit: bool, next_command: str) -> None:
        emit(k="step", ms=gap_ms, digit=digit, next=next_command)


def mirror(kind: str, agi: AGIChannel, detail: str) -> None:
    if kind == "start":
        emit(k="start", id=agi.uniqueid, caller=agi.caller)
    elif kind == "end":
        emit(k="end", id=agi.uniqueid)
    elif (name := played_name(detail)) is not None:
        emit(k="play", id=agi.uniqueid, name=name)


async def serve(settings: Any, url: str) -> None:
    engine = create_engine(url, pool_size=settings.database_pool_size)
    app = App(settings, FakeClock(NOW), engine, session_factory(engine))
    voice = bench_voice(settings)
    server = FastAGIServer()

    async def handler(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, app, voice)

    server.route("absence", handler)
    server.listeners += [MirroredSteps().listener, mirror]
    await server.start("127.0.0.1", settings.fastagi_port)
    emit(k="ready")
    loop = asyncio.get_running_loop()
    # Blocks a worker thread until the driver closes our stdin
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    await server.stop(grace_s=2)
    await engine.dispose()


class _Mirror:
    """Stands in for a call's AGIChannel in the harness's records (``caller``, ``streamed``)."""

    def __init__(self, caller: str) -> None:
        self.caller = caller
        self.streamed: list[str] = []


class AgiProcess:
    """The driver's side: starts the server process in place of the harness's in-process
    FastAGI server and feeds its mirror lines to the harness (``PhoneLines._on_agi``), so
    VirtualPhone.call / wait_prompt / wait_end work unchanged."""

    def __init__(self, lines: Any) -> None:
        self.lines = lines
        self.calls: dict[str, _Mirror] = {}
        self.timer: StepTimer | None = None  # steps go here while set

    async def start(self, url: str) -> AgiProcess:
        await self.lines.fastagi.stop(grace_s=0)  # frees the port the IVR Asterisk dials
        blob = base64.b64encode(pickle.dumps(self.lines.settings)).decode()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.agi_process", blob, url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20)
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
            if kind == "step":
                if self.timer is not None:
                    self.timer.add(m["ms"], m["digit"], m["next"])
                continue
            if kind == "start":
                self.calls[m["id"]] = _Mirror(m["caller"])
            call = self.calls[m["id"]]
            if kind == "play":
                call.streamed.append(m["name"])
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
    asyncio.run(serve(pickle.loads(base64.b64decode(sys.argv[1])), sys.argv[2]))
