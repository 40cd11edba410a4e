"""HTML to PDF with the system's headless Chromium (the same page the print button prints).

Chromium honours ``@page { size: A4 landscape }``, so the PDF matches the print view. No
browser is downloaded: Debian's /usr/bin/chromium (installed by ``make setup``) or the
one named by RENRAKU_CHROMIUM is used, and PdfUnavailable tells the caller when none is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

TIMEOUT_S = 60


class PdfUnavailable(RuntimeError):
    pass


def chromium_path() -> str | None:
    return os.environ.get("RENRAKU_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


def _write(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def html_to_pdf(html: str) -> bytes:
    exe = chromium_path()
    if exe is None:
        raise PdfUnavailable("no chromium")
    with tempfile.TemporaryDirectory(prefix="renraku-pdf-") as tmp:
        src, out = Path(tmp) / "page.html", Path(tmp) / "page.pdf"
        await asyncio.to_thread(_write, src, html)
        proc = await asyncio.create_subprocess_exec(
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
            f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", src.as_uri(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(proc.wait(), TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise PdfUnavailable("chromium timed out") from None
        data = await asyncio.to_thread(_read, out) if out.exists() else b""
    if not data.startswith(b"%PDF"):
        raise PdfUnavailable(f"chromium exited {proc.returncode} without a PDF")
    return data


class PdfCache:
    """Finished PDFs by the SHA-256 of their HTML, for pages many people download alike.

    The key is the page itself, so whatever it prints (a school's name or number, the
    language, the template) changing makes a new entry: nothing to invalidate by hand.
    Those asking for the same page at once wait for one Chromium run, and at most
    ``parallel`` pages are printed at a time (a public page must not start a browser per
    visitor on a two-core server); a failure is not kept. The least recently used entries
    go beyond ``size``.
    """

    def __init__(self, size: int = 64, parallel: int = 2,
                 make: Callable[[str], Awaitable[bytes]] = html_to_pdf) -> None:
        self.size = size
        self._make = make
        self._done: OrderedDict[str, bytes] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._printing = asyncio.Semaphore(parallel)

    async def pdf(self, html: str) -> bytes:
        key = hashlib.sha256(html.encode("utf-8")).hexdigest()
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    return self._done[key]
                async with self._printing:
                    data = await self._make(html)
                self._done[key] = data
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
                return data
        finally:
            if not lock.locked():  # the last one out: a later request finds the entry
                self._locks.pop(key, None)
