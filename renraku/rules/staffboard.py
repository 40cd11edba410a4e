"""Staff-board rules: which files may be attached, and who may read a message."""

from __future__ import annotations

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS = 3

# What the file's first bytes must be for each accepted type (the browser's word and the
# file name's extension are not trusted)
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def attachment_type(head: bytes) -> str | None:
    """The content type of an accepted PDF or image from its first bytes, else None."""
    for magic, content_type in _SIGNATURES:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def safe_filename(name: str) -> str:
    """A download name without paths or quotes, never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;')
    return cleaned.strip(" .")[:120] or "attachment"
