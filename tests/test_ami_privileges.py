"""The IVR's AMI user is least privilege on the real Asterisk: calls yes, CLI/modules no."""

from __future__ import annotations

import asyncio

import pytest

from tests.asterisk_harness import PhoneLines

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize("action", [
    {"Action": "Command", "Command": "core show version"},
    {"Action": "ModuleLoad", "Module": "app_echo.so", "LoadType": "reload"},
    {"Action": "DBPut", "Family": "x", "Key": "y", "Val": "z"},
    {"Action": "GetConfig", "Filename": "manager.conf"},
])
async def test_privileged_actions_are_refused(phone_lines: PhoneLines,
                                              action: dict[str, str]) -> None:
    reply = await asyncio.wait_for(phone_lines.ivr_ami.send_action(dict(action)), 10)
    assert reply.get("Response") == "Error", reply
    assert "permission denied" in reply.get("Message", "").lower(), reply


async def test_the_dialers_actions_are_allowed(phone_lines: PhoneLines) -> None:
    reply = await asyncio.wait_for(
        phone_lines.ivr_ami.send_action({"Action": "CoreShowChannels"}), 10)
    events = reply if isinstance(reply, list) else [reply]
    assert events[0].get("Response") == "Success", events[0]
    # Hangup of a channel that does not exist: allowed, and says so (not "permission").
    missing = await asyncio.wait_for(phone_lines.ivr_ami.send_action(
        {"Action": "Hangup", "Channel": "PJSIP/nobody-00000000"}), 10)
    assert "permission" not in missing.get("Message", "").lower(), missing
