"""A menu's sounds and keys as one ``Read`` (ivr.keypad), through the real Asterisk."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from ivr.fastagi import AGIChannel
from tests.asterisk_harness import PhoneLines

TONE_S = 1.0


def _tone(sounds: Path, lang: str, name: str, seconds: float = TONE_S) -> str:
    """A tone at ``sounds/<lang>/renraku/<name>.wav`` (only there); its sound name."""
    path = sounds / lang / "renraku" / f"keypad-{name}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth",
                        str(seconds), "sine", "500", "vol", "0.3"], check=True)
    return f"renraku/keypad-{name}"


class Menu:
    """A FastAGI route that reads keys with the given arguments; what it got, and when."""

    def __init__(self, lines: PhoneLines, sounds: list[tuple[str, str]], max_digits: int,
                 timeout_ms: int, channel_lang: str = "ja") -> None:
        self.keys: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()

        async def handler(agi: AGIChannel) -> None:
            await agi.set_variable("CHANNEL(language)", channel_lang)
            started = time.monotonic()
            keys = await agi.read_keys(sounds, channel_lang, max_digits, timeout_ms)
            self.keys.set_result((keys, time.monotonic() - started))
            await agi.hangup()

        lines.route("absence", handler)

    async def result(self) -> tuple[str, float]:
        return await asyncio.wait_for(self.keys, 20)


@pytest.fixture
def sounds(lines: PhoneLines) -> list[tuple[str, str]]:
    folder = lines.settings.sounds_dir
    return [("ja", _tone(folder, "ja", name)) for name in ("one", "two", "three")]


@pytest.mark.parametrize(("pressed", "max_digits", "expected"), [
    ("#", 1, "#"),  # a menu has no terminator: # and * are keys
    ("*", 1, "*"),
    ("7", 1, "7"),
    ("930#", 4, "930"),
    ("1030", 4, "1030"),  # four digits end the number without #
    ("#", 4, "#"),  # alone, # is the result ("no time")
    ("*", 4, "*"),  # * ("back") is a key, ended by the timeout
    ("1*", 4, "1*"),
])
async def test_keys_pressed_during_the_second_sound(
    lines: PhoneLines, sounds: list[tuple[str, str]], pressed: str, max_digits: int,
    expected: str,
) -> None:
    menu = Menu(lines, sounds, max_digits, 3000)
    phone = lines.phone("09011110001")
    await phone.call()
    await phone.wait_prompt("keypad-one")
    await asyncio.sleep(TONE_S + 0.3)  # into the second sound
    await phone.press(pressed, gap=0.2)
    keys, _took = await menu.result()
    assert keys == expected
    assert [n.rsplit("-", 1)[1] for n in phone.played] == ["one", "two", "three"]


async def test_nothing_pressed_is_empty_after_every_sound_and_the_timeout(
    lines: PhoneLines, sounds: list[tuple[str, str]],
) -> None:
    menu = Menu(lines, sounds, 1, 1000)
    phone = lines.phone("09011110002")
    await phone.call()
    keys, took = await menu.result()
    assert keys == ""
    assert took >= 3 * TONE_S + 0.9  # all three sounds played, then the timeout


async def test_a_pause_ends_a_number_with_the_digits_so_far(
    lines: PhoneLines, sounds: list[tuple[str, str]],
) -> None:
    menu = Menu(lines, sounds[:1], 4, 1500)
    phone = lines.phone("09011110003")
    await phone.call()
    await phone.wait_prompt("keypad-one")
    await phone.press("93", gap=0.2)
    keys, _took = await menu.result()
    assert keys == "93"


async def test_a_sound_of_another_language_plays_from_its_own_folder(
    lines: PhoneLines,
) -> None:
    """The language menu says each option in its own language on a Japanese channel."""
    folder = lines.settings.sounds_dir
    english = ("en", _tone(folder, "en", "english", 2.0))  # only under sounds/en/
    menu = Menu(lines, [english], 1, 300)
    phone = lines.phone("09011110004")
    await phone.call()
    keys, took = await menu.result()
    assert keys == ""
    assert took >= 2.0  # the 2 s tone played (a missing file is skipped at once)
    assert phone.played == ["en/renraku/keypad-english"]


async def test_a_key_pressed_while_the_app_is_busy_between_sounds_is_kept(
    lines: PhoneLines, sounds: list[tuple[str, str]],
) -> None:
    """Why menus use Read: between two AGI commands Asterisk drops the caller's keys.

    The app lags a second after each sound (as its event loop did at the morning peak); the
    caller presses half a second after the first sound ends. One STREAM FILE per sound
    loses that key; one Read keeps it.
    """
    got: dict[str, str] = {}

    async def handler(agi: AGIChannel) -> None:
        one, two = sounds[0][1], sounds[1][1]
        if agi.caller.endswith("5"):
            pressed = await agi.stream_file(one, "0123456789*#")
            await asyncio.sleep(1.0)  # the busy app, between two commands
            pressed = pressed or await agi.stream_file(two, "0123456789*#")
            got["stream file"] = pressed
        else:
            got["read"] = await agi.read_keys(sounds[:2], "ja", 1, 1000)
            await asyncio.sleep(1.0)
        await agi.hangup()

    lines.route("absence", handler)
    for number, way in (("09011110005", "stream file"), ("09011110006", "read")):
        phone = lines.phone(number)
        await phone.call()
        await phone.wait_prompt("keypad-one")
        await asyncio.sleep(TONE_S + 0.5)
        await phone.press("4")
        await phone.wait_end()
        assert way in got
    assert got == {"stream file": "", "read": "4"}
