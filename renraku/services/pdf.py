"""HTML to PDF with the system's headless Chromium (the same page the print button prints).

Chromium honours ``@page { size: A4 landscape }``, so the PDF matches the print view. No
browser is downloaded: Debian's /usr/bin/chromium (installed by ``make setup``) or the
one named by RENRAKU_CHROMIUM is used, and PdfUnavailable tells the caller when none is.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
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
