"""Long Japanese text in pieces Open JTalk can take.

Debian's ``open_jtalk`` reads one line into a fixed buffer of about 1 KiB and silently
drops the rest (a long broadcast message was cut off after ~340 characters; much longer
input can even crash it). Text is split at sentence ends, then at commas, and only as a
last resort inside a sentence, each piece well under the limit; the pieces are spoken
one by one and joined.
"""

from __future__ import annotations

import re

MAX_BYTES = 900  # UTF-8 bytes per open_jtalk run; the buffer is 1024 with the newline
_SENTENCE = re.compile(r"(?<=[。！？!?\n])")
_CLAUSE = re.compile(r"(?<=[、，,；;：:])")


def _fits(text: str, limit: int) -> bool:
    return len(text.encode()) <= limit


def _hard_split(text: str, limit: int) -> list[str]:
    out, piece = [], ""
    for ch in text:  # whole characters: never a half UTF-8 sequence
        if not _fits(piece + ch, limit):
            out.append(piece)
            piece = ""
        piece += ch
    return [*out, piece] if piece else out


def _pack(parts: list[str], limit: int, smaller: list[re.Pattern[str]]) -> list[str]:
    chunks: list[str] = []
    current = ""
    for part in parts:
        if not _fits(part, limit):
            if current:
                chunks.append(current)
                current = ""
            if smaller:
                chunks += _pack([p for p in smaller[0].split(part) if p], limit, smaller[1:])
            else:
                chunks += _hard_split(part, limit)
        elif _fits(current + part, limit):
            current += part
        else:
            chunks.append(current)
            current = part
    if current:
        chunks.append(current)
    return chunks


def split_for_openjtalk(text: str, limit: int = MAX_BYTES) -> list[str]:
    """``text`` as pieces of at most ``limit`` UTF-8 bytes, cut where a reader would pause."""
    text = text.strip()
    if _fits(text, limit) and "\n" not in text:
        return [text] if text else []
    parts = [p for p in _SENTENCE.split(text) if p]
    chunks = _pack(parts, limit, [_CLAUSE])
    # open_jtalk reads only the first line of its input: no newline may stay inside a piece.
    return [c.replace("\n", " ").strip() for c in chunks if c.strip()]
