"""``renraku backup`` and ``renraku restore``: the database and the data folder, in one archive."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from renraku.services.backup import BackupError, make_backup, restore_backup
from renraku.settings import Settings


async def backup(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    output = Path(args.output or f"renraku-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz")
    try:
        summary = await make_backup(settings, output, now)
    except BackupError as exc:
        print(f"renraku backup: {exc}")
        return 1
    print(f"backup written: {summary.archive} ({summary.database} database and "
          f"{summary.files} files, {summary.bytes / 1e6:.1f} MB before compression)")
    print("  it holds the secrets and families' data: keep it off this machine, encrypted")
    return 0


async def restore(settings: Settings, args: argparse.Namespace) -> int:
    if args.data_dir:
        settings = settings.replace(data_dir=Path(args.data_dir))
    try:
        summary = await restore_backup(settings, Path(args.archive))
    except BackupError as exc:
        print(f"renraku restore: {exc}")
        return 1
    print(f"restored {summary.files} files and the {summary.database} database into "
          f"{settings.data_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="back up the database, recordings, prompts and secrets")
    p.add_argument("-o", "--output",
                   help="archive to write (default: ./renraku-backup-<UTC time>.tar.gz)")
    p.set_defaults(func=backup)
    r = sub.add_parser("restore", help="restore a backup into an empty data folder")
    r.add_argument("archive", help="a file written by `renraku backup`")
    r.add_argument("--data-dir", help="restore here instead of the configured data_dir "
                                      "(must be empty or not exist)")
    r.set_defaults(func=restore, needs_schema=False)  # into an empty folder or database
