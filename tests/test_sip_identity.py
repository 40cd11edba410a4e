"""Who the IVR takes a SIP request for: the trunk by its address only, the softphone by its
account and password, nobody else; the trunk's asserted caller ID is believed."""

from __future__ import annotations

import asyncio

import pytest

from ivr.fastagi import AGIChannel
from tests.asterisk_harness import PhoneLines
from tests.test_softphone import SipPhone

pytestmark = pytest.mark.asterisk


def _recorder(lines: PhoneLines) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    async def handler(agi: AGIChannel) -> None:
        seen.append((await agi.get_variable("CALLERID(num)") or "",
                     await agi.get_full_variable("${CHANNEL(endpoint)}") or ""))
        await agi.hangup()

    lines.route("absence", handler)
    return seen


async def _call(lines: PhoneLines, user: str, host: str, extra: str = "",
                exten: str = "0120000000", password: str = "x") -> int:
    phone = SipPhone(lines.settings.sip_port, user, password, host=host, extra_headers=extra)
    try:
        return await asyncio.to_thread(phone.call, exten)
    finally:
        phone.close()


async def test_a_stranger_calling_itself_carrier_is_refused(lines: PhoneLines) -> None:
    seen = _recorder(lines)
    # From: carrier, but from an address that is not the trunk's.
    code = await _call(lines, "carrier", "127.0.0.2",
                       "P-Asserted-Identity: <sip:09010000001@127.0.0.1>\r\n")
    assert code in (401, 403, 404), code
    await asyncio.sleep(0.5)
    assert seen == []


async def test_the_trunk_is_known_by_address_and_its_asserted_id_believed(
    lines: PhoneLines,
) -> None:
    seen = _recorder(lines)
    # The carrier's own address (127.0.0.1 in the harness); the From user is a number.
    code = await _call(lines, "0311112222", "127.0.0.1",
                       "P-Asserted-Identity: <sip:09055556666@127.0.0.1>\r\n")
    assert code == 200, code
    await lines.wait_for(lambda: seen, 10)
    assert seen == [("09055556666", "carrier")]


async def test_the_softphone_on_the_trunks_address_still_needs_its_password(
    lines: PhoneLines,
) -> None:
    seen = _recorder(lines)
    code = await _call(lines, "softphone", "127.0.0.1", exten="1", password="wrong")
    assert code in (401, 403), code
    await asyncio.sleep(0.5)
    assert seen == []
