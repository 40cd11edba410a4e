"""The harness's scripted households, driven straight through the IVR's broadcast context.

Independent of the dialer: each test originates over the IVR's AMI exactly as a campaign
call is placed (``PJSIP/<number>@carrier`` into ``renraku-broadcast`` with the campaign,
attempt and language variables), and a small FastAGI handler reports what the project's
dialplan handed it (AMD verdict, ids, channel language) and which key the household
pressed. So a broken household script or broadcast dialplan shows up here by name.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest

from ivr.fastagi import AGIChannel, Hangup
from tests.asterisk_harness import PhoneLines

pytestmark = pytest.mark.asterisk
_attempts = itertools.count(1)

# OriginateResponse reason for an answered call (AST_CONTROL_ANSWER); the others are told
# apart by the Q.850 cause of the IVR channel's Hangup event.
ANSWERED = "4"
BUSY, NO_ANSWER, REJECTED = "17", ("18", "19"), "21"


def _get(msg: Any, key: str) -> str:
    return str(msg.get(key, "") or "")


class Seen:
    """What the broadcast handler saw, per attempt id."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, str]] = {}

    async def handler(self, agi: AGIChannel) -> None:
        attempt = await agi.get_variable("RENRAKU_ATTEMPT") or "?"
        seen = self.calls.setdefault(attempt, {})
        seen["campaign"] = await agi.get_variable("RENRAKU_CAMPAIGN") or ""
        seen["amd"] = await agi.get_variable("AMDSTATUS") or ""
        seen["language"] = await agi.get_full_variable("${CHANNEL(language)}") or ""
        try:
            digit = await agi.stream_file("beep", "0123456789")
            seen["digit"] = digit or await agi.wait_for_digit(9000)
        except Hangup:
            seen["hung_up"] = "yes"
            raise
        await agi.hangup()


async def _place(lines: PhoneLines, number: str, lang: str = "en",
                 ring_s: int = 6) -> tuple[str, dict[str, str]]:
    """Originate one campaign call; its attempt id, OriginateResponse and hang-up cause."""
    attempt = str(next(_attempts))
    channel_id = f"household-{attempt}-{uuid.uuid4().hex[:8]}"
    reply = await asyncio.wait_for(lines.ivr_ami.send_action({
        "Action": "Originate", "Channel": f"PJSIP/{number}@carrier",
        "Context": "renraku-broadcast", "Exten": "s", "Priority": "1",
        "Timeout": str(ring_s * 1000), "Async": "true", "CallerID": "0120000000",
        "ChannelId": channel_id,
        "Variable": ["RENRAKU_CAMPAIGN=77", f"RENRAKU_ATTEMPT={attempt}",
                     f"RENRAKU_LANG={lang}"],
    }), ring_s + 15)
    msgs = reply if isinstance(reply, list) else [reply]
    event = next((m for m in msgs if _get(m, "Event") == "OriginateResponse"), msgs[-1])
    out = {k: _get(event, k) for k in ("Response", "Reason")}
    if out["Reason"] != ANSWERED:
        def hangup() -> dict[str, str] | None:
            return next((e for e in lines.ivr_ami_events if e.get("Event") == "Hangup"
                         and e.get("Uniqueid") == channel_id), None)

        await _until(lambda: hangup() is not None, 10)
        out["Cause"] = (hangup() or {}).get("Cause", "")
    return attempt, out


@pytest.fixture
def seen(lines: PhoneLines) -> Seen:
    tracker = Seen()
    lines.route("broadcast", tracker.handler)
    return tracker


async def _until(predicate: Any, within: float = 20.0) -> None:
    # Polling: the facts come from AMI events and FastAGI handlers with no common signal.
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_households_answer_as_scripted(lines: PhoneLines, seen: Seen) -> None:
    plans = {
        "08010000001": "answer:4:5",   # a person: hello, then presses 5 during the message
        "08010000002": "machine",      # a long greeting: AMD calls it a machine
        "08010000003": "hangup:5",     # answers, hangs up in the middle of the message
        "08010000004": "busy",
        "08010000005": "noanswer",
        "08010000006": "reject",
    }
    for number, plan in plans.items():
        await lines.household(number, plan)
    langs = {"08010000001": "es", "08010000002": "zh"}
    results = dict(zip(plans, await asyncio.gather(
        *(_place(lines, n, langs.get(n, "ja")) for n in plans)
    ), strict=True))
    attempt = {n: a for n, (a, _r) in results.items()}
    reason = {n: r["Reason"] for n, (_a, r) in results.items()}
    cause = {n: r.get("Cause", "") for n, (_a, r) in results.items()}

    for n in ("08010000001", "08010000002", "08010000003"):
        assert reason[n] == ANSWERED, (n, results[n])
    assert cause["08010000004"] == BUSY, results["08010000004"]
    assert cause["08010000005"] in NO_ANSWER, results["08010000005"]
    assert cause["08010000006"] == REJECTED, results["08010000006"]
    for n in ("08010000004", "08010000005", "08010000006"):
        assert reason[n] != ANSWERED, results[n]
    # Calls that never connected reach no call flow.
    for n in ("08010000004", "08010000005", "08010000006"):
        assert attempt[n] not in seen.calls

    await _until(lambda: all(
        "digit" in seen.calls.get(attempt[n], {}) or "hung_up" in seen.calls.get(attempt[n], {})
        for n in ("08010000001", "08010000002", "08010000003")))
    person = seen.calls[attempt["08010000001"]]
    assert person == {"campaign": "77", "amd": "HUMAN", "language": "es", "digit": "5"}
    machine = seen.calls[attempt["08010000002"]]
    assert machine["amd"] == "MACHINE" and machine["language"] == "zh"
    assert machine.get("digit", "") == ""  # a machine presses nothing
    assert seen.calls[attempt["08010000003"]].get("hung_up") == "yes"
    for n in plans:
        assert await lines.household_attempts(n) == 1, n


async def test_a_plan_steps_through_attempts(lines: PhoneLines, seen: Seen) -> None:
    number = "08010000011"
    await lines.household(number, "busy|answer:4:7")
    _a1, first = await _place(lines, number)
    assert first["Reason"] != ANSWERED and first["Cause"] == BUSY, first
    a2, second = await _place(lines, number)
    assert second["Reason"] == ANSWERED
    await _until(lambda: "digit" in seen.calls.get(a2, {}))
    assert seen.calls[a2]["digit"] == "7"
    # The last step repeats for later attempts.
    a3, third = await _place(lines, number)
    assert third["Reason"] == ANSWERED
    await _until(lambda: "digit" in seen.calls.get(a3, {}))
    assert await lines.household_attempts(number) == 3
