"""``GET /sounds/…``: what a city's IVR nodes fetch (prompts.media), and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prompts import media, store
from tests.staff_fixtures import StaffPortal


def tone(path: Path, seconds: str = "0.5", freq: str = "440") -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth",
                    seconds, "sine", freq, "vol", "0.5"], check=True)
    return path


async def test_versions_are_served_from_the_database_to_the_allowed_addresses_only(
        staff_portal: StaffPortal, tmp_path: Path) -> None:
    app = staff_portal.app
    prompt = await store.add_recording(app.sessions, app.settings, "absence.goodbye", "ja",
                                       tone(tmp_path / "in.wav"))
    made = app.settings.sounds_dir / prompt.audio_path
    audio = made.read_bytes()
    made.unlink()  # as on an app node that did not make it: only the database has it
    client = await staff_portal.client()
    path = f"{media.ROUTE}/ja/renraku/versions/absence.goodbye.v{prompt.version}.wav"
    r = await client.get(path)
    assert r.status == 200 and await r.read() == audio
    assert r.headers["Content-Type"] == "audio/wav"
    assert "max-age=31536000" in r.headers["Cache-Control"]
    assert made.read_bytes() == audio  # kept for the next node that asks
    for missing in (f"{media.ROUTE}/ja/renraku/versions/absence.goodbye.v99.wav",
                    f"{media.ROUTE}/ja/renraku/absence.goodbye.wav",  # the mutable name
                    f"{media.ROUTE}/xx/renraku/versions/absence.goodbye.v1.wav",
                    f"{media.ROUTE}/ja/renraku/dyn/{'0' * 32}.wav",
                    f"{media.ROUTE}/ja/renraku/%2e%2e/%2e%2e/%2e%2e/secret_key"):
        assert (await client.get(missing)).status == 404, missing
    app.settings = app.settings.replace(sounds_allow="192.0.2.0/24")  # not this address
    assert (await client.get(path)).status == 403


def test_sound_urls_are_long_enough_for_asterisks_media_cache(staff_portal: StaffPortal) -> None:
    settings = staff_portal.app.settings.replace(sounds_url="http://a:1/sounds")
    short = media.name_url(settings, "ja", "renraku/dyn/silence")
    assert short.startswith("http://a:1/sounds/ja/renraku/dyn/silence.wav?")
    assert len(short) == media.MIN_URL_LEN


async def test_a_node_gets_the_active_prompts_into_its_own_folder(
        staff_portal: StaffPortal, tmp_path: Path) -> None:
    app = staff_portal.app
    first = await store.add_recording(app.sessions, app.settings, "voicemail.intro", "ja",
                                      tone(tmp_path / "a.wav"))
    node_sounds = tmp_path / "node" / "sounds"
    assert await media.sync_node(app.sessions, node_sounds) == (1, 0)
    on_node = node_sounds / "ja" / "renraku" / "voicemail.intro.wav"
    assert on_node.read_bytes() == (app.settings.sounds_dir / first.audio_path).read_bytes()
    assert await media.sync_node(app.sessions, node_sounds) == (0, 1)  # nothing to do
    second = await store.add_recording(app.sessions, app.settings, "voicemail.intro", "ja",
                                       tone(tmp_path / "b.wav", "0.8", "300"))
    assert await media.sync_node(app.sessions, node_sounds) == (1, 0)  # the new version
    assert on_node.read_bytes() == (app.settings.sounds_dir / second.audio_path).read_bytes()
