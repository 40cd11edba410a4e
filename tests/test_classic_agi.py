"""The pyst2 adapter: AGI lines in, async channel results out, hang-ups mapped."""

from __future__ import annotations

import io

import pytest

from ivr.classic_agi import ClassicHangup, connect

ENV = "agi_network: no\nagi_callerid: 09011112222\nagi_language: ja\n\n"


def channel(*responses: str) -> tuple[object, io.StringIO]:
    out = io.StringIO()
    ch = connect(io.StringIO(ENV + "".join(r + "\n" for r in responses if r)), out)
    return ch, out


async def test_commands_and_results() -> None:
    ch, out = channel("200 result=1 (09011112222)", "200 result=0", "200 result=49 endpos=100",
                      "200 result=42", "200 result=0", "200 result=1")
    assert ch.headers["agi_callerid"] == "09011112222"  # type: ignore[attr-defined]
    assert await ch.get_variable("CALLERID(num)") == "09011112222"  # type: ignore[attr-defined]
    await ch.set_variable("CHANNEL(language)", "en")  # type: ignore[attr-defined]
    assert await ch.stream_file("renraku/absence.welcome", "0123456789*#") == "1"  # type: ignore[attr-defined]
    assert await ch.wait_for_digit(5000) == "*"  # type: ignore[attr-defined]
    assert await ch.wait_for_digit(5000) == ""  # type: ignore[attr-defined]
    await ch.hangup()  # type: ignore[attr-defined]
    sent = out.getvalue().splitlines()
    assert sent == [
        'GET VARIABLE "CALLERID(num)"',
        'SET VARIABLE "CHANNEL(language)" "en"',
        'STREAM FILE renraku/absence.welcome "0123456789*#" 0',
        "WAIT FOR DIGIT 5000",
        "WAIT FOR DIGIT 5000",
        "HANGUP",
    ]


@pytest.mark.parametrize("response", [
    "200 result=-1",  # the caller hung up during playback
    "511 Command Not Permitted on a dead channel or intercept routine",
    "",  # nothing more: Asterisk closed the pipe
])
async def test_hang_ups_become_one_exception(response: str) -> None:
    ch, _ = channel(response)
    with pytest.raises(ClassicHangup):
        await ch.stream_file("renraku/absence.main_menu", "1")  # type: ignore[attr-defined]
