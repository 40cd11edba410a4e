"""The admin recording line (FastAGI ``/admin-record``): replace a prompt by one's own voice.

The caller must be a staff member whose registered number is the caller ID *and* who
knows their PIN. They pick a language and a prompt by its number on the printed list
(``renraku prompts list``), hear the current version, record a new one (``#`` stops),
listen back and keep, re-record or discard it; or go back to the previous version.
Only a kept recording changes anything: it becomes a new active version through
:mod:`prompts.store`, older versions stay for rollback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from ivr.fastagi import AGIChannel, Hangup
from models import Staff
from prompts import media, store
from prompts.catalog import catalog
from prompts.voice import PromptVoice
from renraku.app import App
from renraku.rules.phone import try_normalise
from renraku.services.passwords import verify_password
from renraku.settings import LANGUAGES, ensure_secret

log = logging.getLogger(__name__)

MAX_TRIES = 3
DIGIT_MS = 6000
RECORD_MAX_MS = store.MAX_RECORDING_S * 1000
ARI_TIMEOUT = aiohttp.ClientTimeout(total=10)


class AdminRecordCall:
    def __init__(self, agi: AGIChannel, app: App, voice: PromptVoice) -> None:
        self.agi = agi
        self.app = app
        self.voice = voice
        self.lang = "ja"  # the staff member's own language, once known

    async def say(self, key: str, escape: str = "", **fmt: Any) -> str:
        return await self.agi.stream_file(await self.voice.phrase(key, self.lang, **fmt), escape)

    async def ask(self, key: str, max_digits: int, **fmt: Any) -> str:
        """Play a prompt and collect up to ``max_digits`` keys (``#`` ends early)."""
        name = await self.voice.phrase(key, self.lang, **fmt)
        return await self.agi.get_data(name, DIGIT_MS, max_digits)

    async def run(self) -> None:
        try:
            staff = await self.identify()
            if staff is None:
                return
            while await self.one_prompt(staff):
                pass
            await self.say("admin.goodbye")
        finally:
            with contextlib.suppress(Hangup):
                await self.agi.hangup()

    async def identify(self) -> Staff | None:
        raw = await self.agi.get_variable("CALLERID(num)") or ""
        number = try_normalise(raw, self.app.settings.default_region)
        staff = None
        if number is not None:
            async with self.app.sessions() as s:
                staff = await s.scalar(select(Staff).where(
                    Staff.phone_e164 == number.e164, Staff.active.is_(True),
                    Staff.pin_hash.is_not(None)))
        if staff is None:
            log.warning("admin line: refused caller %r", raw)
            await self.say("admin.not_allowed")
            return None
        self.lang = staff.language if staff.language in LANGUAGES else "ja"
        await self.say("admin.welcome")
        for _ in range(MAX_TRIES):
            pin = await self.ask("admin.enter_pin", 8)
            if pin and verify_password(staff.pin_hash, pin):
                return staff
            await self.say("admin.wrong_pin")
        log.warning("admin line: wrong PIN %d times from %s", MAX_TRIES, raw)
        return None

    async def choose(self, key: str, max_digits: int, valid: Any) -> Any:
        for _ in range(MAX_TRIES):
            got = await self.ask(key, max_digits)
            result = valid(got)
            if result is not None:
                return result
        return None

    async def one_prompt(self, staff: Staff) -> bool:
        """One prompt handled; False ends the call."""
        lang = await self.choose("admin.choose_language", 1,
                                 lambda d: LANGUAGES[int(d) - 1] if d in "1234" and d else None)
        if lang is None:
            return False
        entry = None
        for _ in range(MAX_TRIES):
            digits = await self.ask("admin.enter_number", 4)
            entry = catalog().by_number(int(digits)) if digits.isdigit() else None
            if entry is not None and entry.static:
                break
            await self.say("admin.not_recordable" if entry else "admin.unknown_number")
            entry = None
        if entry is None:
            return False
        return await self.prompt_menu(staff, entry.key, lang)

    async def active_sound(self, key: str, lang: str) -> str:
        settings = self.app.settings
        if media.enabled(settings):  # a city: the node fetches the version by its URL
            async with self.app.sessions() as s:
                current = await store.active(s, key, lang)
            if current is not None:
                return media.version_url(settings, lang, key, current.version)
        # An absolute name plays that language's file whatever the channel's language is.
        return str(store.active_path(settings, lang, key).with_suffix(""))

    async def prompt_menu(self, staff: Staff, key: str, lang: str) -> bool:
        async with self.app.sessions() as s:
            current = await store.active(s, key, lang)
        if current is not None:
            await self.say("admin.current_version", version=str(current.version))
            await self.say(f"admin.source.{current.source}")
        for _ in range(MAX_TRIES):
            choice = await self.ask("admin.prompt_menu", 1)
            if choice == "1":
                await self.record(staff, key, lang)
                return True
            if choice == "2":
                await self.agi.stream_file(await self.active_sound(key, lang), "#")
            elif choice == "3":
                try:
                    await store.rollback(self.app.sessions, self.app.settings, key, lang)
                    await self.say("admin.rolled_back")
                except store.PromptError as exc:
                    await self.say(exc.message_key)
                return True
            elif choice == "*":
                return True
        return False

    async def record(self, staff: Staff, key: str, lang: str) -> None:
        node = await NodeRecordings.of(self.agi, self.app)
        for _ in range(MAX_TRIES):
            await self.say("admin.record_after_tone")
            name = f"{key.replace('.', '_')}-{lang}-{uuid.uuid4().hex[:8]}"
            base = node.folder / name  # on the IVR node that runs the call
            try:
                await self.agi.record_file(str(base), "wav", "#", RECORD_MAX_MS, beep=True)
                await self.agi.stream_file(str(base), "123")
                choice = await self.ask("admin.review_keys", 1)
                if choice == "1":
                    try:
                        async with node.fetched(name) as wav:
                            await store.add_recording(self.app.sessions, self.app.settings,
                                                      key, lang, wav, staff.id)
                    except store.PromptError as exc:
                        await self.say(exc.message_key)
                        continue
                    await self.say("admin.saved")
                    return
                if choice != "2":
                    await self.say("admin.discarded")
                    return
            finally:
                await node.discard(name)
        await self.say("admin.discarded")


class NodeRecordings:
    """Where the IVR node running the call records, and how this app node gets the file.

    One machine: a folder of the data folder both share. A city (the node's dialplan
    names its ARI, ``RENRAKU_NODE_ARI``): the node's spool, fetched and then deleted
    through ARI's stored recordings with the AMI user and secret.
    """

    def __init__(self, folder: Path, ari: str = "", auth: str = "") -> None:
        self.folder, self.ari = folder, ari
        self.headers = {"Authorization": auth} if auth else {}

    @classmethod
    async def of(cls, agi: AGIChannel, app: App) -> NodeRecordings:
        ari = await agi.get_variable("RENRAKU_NODE_ARI") or ""
        folder = await agi.get_variable("RENRAKU_RECORDINGS") or ""
        settings = app.settings
        if ari and folder:
            user_secret = f"{settings.ami_user}:{ensure_secret(settings, 'ami_secret')}"
            return cls(Path(folder), ari.rstrip("/"),
                       "Basic " + base64.b64encode(user_secret.encode()).decode())
        local = settings.data_dir.resolve() / "recordings"
        await asyncio.to_thread(local.mkdir, parents=True, exist_ok=True)
        return cls(local)

    @contextlib.asynccontextmanager
    async def fetched(self, name: str) -> AsyncIterator[Path]:
        """The recording ``name`` as a file on this app node, for as long as needed."""
        if not self.ari:
            yield self.folder / f"{name}.wav"
            return
        with tempfile.TemporaryDirectory(prefix="renraku-rec-") as tmp:
            wav = Path(tmp) / f"{name}.wav"
            async with aiohttp.ClientSession(headers=self.headers, timeout=ARI_TIMEOUT) as http, \
                    http.get(f"{self.ari}/recordings/stored/{name}/file") as r:
                # Nothing recorded (the caller hung up at once): an empty file, refused
                # as such by the store.
                data = await r.read() if r.status == 200 else b""
            await asyncio.to_thread(wav.write_bytes, data)
            yield wav

    async def discard(self, name: str) -> None:
        if not self.ari:
            await asyncio.to_thread((self.folder / f"{name}.wav").unlink, missing_ok=True)
            return
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(headers=self.headers, timeout=ARI_TIMEOUT) as http:
                await http.delete(f"{self.ari}/recordings/stored/{name}")


def handler(app: App, voice: PromptVoice) -> Any:
    """The FastAGI ``/admin-record`` route."""

    async def run(agi: AGIChannel) -> None:
        await AdminRecordCall(agi, app, voice).run()

    return run
