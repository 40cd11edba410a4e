"""GET DATA with * and # keys: Asterisk answers ``200 result=1*2``, and every key counts.

(The first reply parser read only the leading digits, so "1*2" came back as "1".)
"""

from __future__ import annotations

import asyncio

from ivr.fastagi import AGIChannel, parse_reply
from tests.asterisk_harness import PhoneLines


def test_get_data_results_keep_star_and_hash() -> None:
    assert parse_reply("200 result=1*2").result == "1*2"
    assert parse_reply("200 result=*#0 (timeout)").result == "*#0"
    assert parse_reply("200 result=*#0 (timeout)").data == "timeout"
    nothing = parse_reply("200 result= (timeout)")
    assert (nothing.result, nothing.data, nothing.digit) == ("", "timeout", "")
    # STREAM FILE / WAIT FOR DIGIT still give the pressed key as its character code.
    assert parse_reply("200 result=42 endpos=800").digit == "*"
    assert parse_reply("200 result=35").digit == "#"


async def test_star_keys_arrive_through_a_real_call(lines: PhoneLines) -> None:
    got: list[str] = []

    async def handler(agi: AGIChannel) -> None:
        got.append(await agi.get_data("beep", 6000, 6))
        await agi.hangup()

    lines.route("absence", handler)
    phone = lines.phone("09012340077")
    await phone.call()
    await phone.wait_prompt("beep")
    await asyncio.sleep(0.3)
    await phone.press("1*2#")  # '#' ends the entry and is not part of it
    await phone.wait_end()
    assert got == ["1*2"]
