"""Where the SIP bans live between runs, and their history for the admin.

``<data_dir>/sip-bans.json`` holds the bans in force (so a restart of ``renraku run`` keeps
them until they lift); ``<data_dir>/sip-bans.log`` is the append-only history, one JSON
line per ban and per lift, read by ``renraku sip bans``. Bans concern an address, not a
school, so they are kept beside the data rather than in a school's audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from renraku.rules.sip_ban import Ban


def _ban_dict(ban: Ban) -> dict[str, Any]:
    return {"address": ban.address, "since": ban.since.isoformat(),
            "until": ban.until.isoformat(), "failures": ban.failures, "reason": ban.reason}


def _ban(data: dict[str, Any]) -> Ban:
    return Ban(str(data["address"]), datetime.fromisoformat(data["since"]),
               datetime.fromisoformat(data["until"]), int(data["failures"]),
               str(data.get("reason", "")))


class BanStore:
    def __init__(self, data_dir: Path) -> None:
        self.current = data_dir / "sip-bans.json"
        self.history_file = data_dir / "sip-bans.log"
        # Addresses an admin asked to lift (`renraku sip unban`), taken by the running guard.
        self.requests = data_dir / "sip-unban.requests"

    def request_unban(self, address: str) -> None:
        with self.requests.open("a") as f:
            f.write(address + "\n")

    def take_unban_requests(self) -> list[str]:
        """The addresses asked for since the last call (the request file is consumed)."""
        taken = self.requests.with_suffix(".taken")
        try:
            os.replace(self.requests, taken)  # new requests go to a fresh file meanwhile
        except FileNotFoundError:
            return []
        addresses = [line.strip() for line in taken.read_text().splitlines() if line.strip()]
        taken.unlink(missing_ok=True)
        return addresses

    def load(self) -> list[Ban]:
        try:
            rows = json.loads(self.current.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []  # a torn file: the bans are made again by the next failures
        return [_ban(row) for row in rows]

    def save(self, bans: list[Ban]) -> None:
        # Written whole and renamed, so a reader never sees half a list.
        tmp = self.current.with_suffix(".tmp")
        tmp.write_text(json.dumps([_ban_dict(b) for b in sorted(bans, key=lambda b: b.since)]))
        os.replace(tmp, self.current)

    def log(self, event: str, ban: Ban, at: datetime, by: str = "") -> None:
        """``event``: "ban", "lift" (its time ran out) or "unban" (an admin lifted it)."""
        line = {"event": event, "at": at.isoformat(), **_ban_dict(ban)}
        if by:
            line["by"] = by
        with self.history_file.open("a") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first."""
        lines: list[dict[str, Any]] = []
        with contextlib.suppress(FileNotFoundError):
            for raw in self.history_file.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(raw))
        return lines[-limit:]
