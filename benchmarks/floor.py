"""The floor of the morning-peak benchmark: the same absence call as a dialplan-only IVR
(benchmarks/floor.conf: Background/WaitExten, no AGI, no database) on the same IVR
Asterisk, driven by the same callers. What Asterisk alone costs per call and how fast it
answers a key is the least Renraku can cost; peak.py reports Renraku as ratios to it.

The dialplan is added to the running IVR Asterisk for the benchmark only, with an AMI
user that reads its UserEvents (the IVR's own AMI user has no "user" class).
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

FLOOR_EXTEN = "8900"
DIALPLAN = Path(__file__).with_name("floor.conf")


class Floor:
    """Installs the floor IVR and tells its phones which prompt each caller hears, when."""

    def __init__(self, lines: Any) -> None:
        self.lines = lines
        self.heard: dict[str, list[tuple[str, float]]] = {}  # caller number → (prompt, t)
        self._changed: dict[str, asyncio.Event] = {}

    async def install(self) -> Floor:
        from ivr.ami import AMIClient

        ivr = self.lines.ivr
        shutil.copyfile(DIALPLAN, ivr.etc / "dialplans" / "bench_floor.conf")
        secret = uuid.uuid4().hex
        with (ivr.etc / "manager.conf").open("a") as fh:
            fh.write(f"\n[bench-floor]\nsecret = {secret}\ndeny = 0.0.0.0/0.0.0.0\n"
                     "permit = 127.0.0.0/255.0.0.0\nread = user\nwrite = \n")
        await asyncio.to_thread(ivr.rx, "module load app_userevent.so", 15, False)
        for command in ("dialplan reload", "manager reload"):
            await asyncio.to_thread(ivr.rx, command)
        self.ami = await AMIClient("127.0.0.1", self.lines.settings.ami_port, "bench-floor",
                                   secret).start()
        self.ami.register_event("UserEvent", self._on_event)
        return self

    def close(self) -> None:
        self.ami.close()

    def _on_event(self, _manager: Any, event: Any) -> None:
        if event.get("UserEvent") != "RenrakuFloor":
            return
        caller = event.get("Caller", "")[-9:]  # as the harness matches FastAGI callers
        self.heard.setdefault(caller, []).append((event.get("Prompt", ""), time.perf_counter()))
        self._changed.setdefault(caller, asyncio.Event()).set()

    async def wait_prompt(self, caller: str, fragment: str, after: int, within: float) -> int:
        """As VirtualPhone.wait_prompt: the index after the first matching prompt."""
        changed = self._changed.setdefault(caller, asyncio.Event())
        deadline = time.perf_counter() + within
        while True:
            heard = self.heard.get(caller, [])
            for i in range(after, len(heard)):
                if fragment in heard[i][0]:
                    return i + 1
            changed.clear()
            await asyncio.wait_for(changed.wait(), max(0.0, deadline - time.perf_counter()))


def floor_phone(lines: Any, floor: Floor, number: str, pool: Any) -> Any:
    """A pooled phone that dials the floor IVR and hears its prompts through the Floor."""
    from benchmarks.phones import pooled_phone

    base = type(pooled_phone(lines, number, pool, dialled=FLOOR_EXTEN))

    class FloorPhone(base):  # type: ignore[misc, valid-type]
        async def call(self, within: float = 15.0, withheld: bool = False) -> None:
            await self.lines.carrier_ami.send_action({
                "Action": "Originate", "Channel": f"PJSIP/{self.dialled}@ivr",
                "Context": self.context, "Exten": "s", "Priority": "1", "Async": "true",
                "ChannelId": self.id, "CallerID": f'"{self.number}" <{self.number}>'})
            await self.lines.wait_for(lambda: self.lines.carrier_channels.get(self.id), within)
            self.record = True  # (VirtualPhone's CallRecord: here only "the call is up")

        async def wait_prompt(self, fragment: str, within: float = 15.0, after: int = 0) -> int:
            return await floor.wait_prompt(self.number[-9:], fragment, after, within)

        def heard_at(self, index: int) -> float:
            return floor.heard[self.number[-9:]][index][1]

        @property
        def played(self) -> list[str]:
            return [name for name, _ in floor.heard.get(self.number[-9:], [])]

        async def wait_end(self, within: float = 20.0) -> None:
            await floor.wait_prompt(self.number[-9:], "end", 0, within)

    return FloorPhone(lines, number, FLOOR_EXTEN)
