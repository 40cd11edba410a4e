"""Fetch the Open JTalk voice (MMDAgent's 'mei', CC BY 3.0) once, outside git.

Debian packages Open JTalk and its dictionary but not a usable voice; the ``mei_normal``
voice ships inside pyopenjtalk's source package, so the ordinary pip client downloads that
sdist (pinned) and we keep only the voice and its licence.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from prompts.tts import openjtalk_voice_path
from renraku.settings import Settings

PYOPENJTALK = "pyopenjtalk==0.4.1"
MEMBERS = ("mei_normal.htsvoice", "LICENSE_mei_normal.htsvoice")
# The voice inside that sdist: a changed upstream file is refused, not spoken with.
MEI_SHA256 = "f3be49a6838904a6c218790b64e07c3e83c1886e995dca284b413caab19184de"


class VoiceFetchError(RuntimeError):
    pass


def ensure_openjtalk_voice(settings: Settings, log=print) -> Path:  # type: ignore[no-untyped-def]
    """The voice file's path, downloaded first when it is not there yet (idempotent)."""
    target = openjtalk_voice_path(settings)
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="renraku-voice-") as tmp:
        log(f"downloading {PYOPENJTALK} (source) for the Open JTalk voice…")
        # --no-binary for this package only: its build dependencies may come as wheels,
        # and nothing is built (pip only prepares metadata).
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
             "--no-binary", "pyopenjtalk", "-d", tmp, PYOPENJTALK],
            capture_output=True, text=True, check=False,
        )
        sdists = sorted(Path(tmp).glob("pyopenjtalk-*.tar.gz"))
        if not sdists:
            raise VoiceFetchError(f"pip download {PYOPENJTALK} failed: {done.stderr[-800:]}")
        with tarfile.open(sdists[0]) as tar:
            found = {Path(m.name).name: m for m in tar.getmembers()
                     if m.isfile() and "/htsvoice/" in m.name and Path(m.name).name in MEMBERS}
            if MEMBERS[0] not in found:
                raise VoiceFetchError(f"{sdists[0].name} holds no {MEMBERS[0]}")
            voice = tar.extractfile(found[MEMBERS[0]])
            assert voice is not None
            digest = hashlib.sha256(voice.read()).hexdigest()
            if digest != MEI_SHA256:
                raise VoiceFetchError(f"{MEMBERS[0]} in {sdists[0].name} has sha256 {digest},"
                                      f" expected {MEI_SHA256}; not installed")
            for name, member in found.items():
                src = tar.extractfile(member)
                assert src is not None
                dst = target if name == MEMBERS[0] else target.with_name(name)
                partial = dst.with_suffix(".part")
                with open(partial, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                partial.replace(dst)  # atomic: a half-written voice is never used
    log(f"Open JTalk voice: {target}")
    return target
