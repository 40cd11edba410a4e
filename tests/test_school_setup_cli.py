"""A school starting from nothing on the command line: ``renraku school create`` and
``renraku staff create``, their errors, and every command refusing an un-migrated database
with "run renraku db upgrade" (one line, no traceback)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from models import School, Staff
from models.db import create_engine, session_factory
from renraku.services.passwords import verify_password
from tests.db_fixtures import PG_URL, pg_answers
from tests.test_cli import renraku

LINK = re.compile(r"https?://\S+/password/reset/\d+/\S+")


def one_line_error(out: object) -> str:
    err = out.stderr.strip()  # type: ignore[attr-defined]
    assert out.returncode != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err  # type: ignore[attr-defined]
    return str(err)


@pytest.mark.parametrize("argv", [
    ["demo-data"], ["school", "create", "--name", "x"],
    ["staff", "create", "--admin", "a@x.jp", "--school", "1"], ["prompts", "check"], ["web"],
])
def test_every_command_needing_the_schema_says_upgrade(tmp_path: Path,
                                                       argv: list[str]) -> None:
    err = one_line_error(renraku(*argv, data_dir=tmp_path))
    assert err.endswith("run renraku db upgrade") and "no database yet" in err
    assert not (tmp_path / "renraku.db").exists()  # the check creates nothing


def test_an_empty_or_outdated_database_says_upgrade(tmp_path: Path) -> None:
    assert renraku("db", "upgrade", "0002_staff_roles", data_dir=tmp_path).returncode == 0
    err = one_line_error(renraku("school", "list", data_dir=tmp_path))
    assert "at 0002_staff_roles" in err and err.endswith("run renraku db upgrade")
    assert renraku("config", data_dir=tmp_path).returncode == 0  # needs no schema
    assert renraku("prompts", "list", "--lang", "ja", data_dir=tmp_path).returncode == 0


@pytest.mark.skipif(not pg_answers(), reason="PostgreSQL: no server answers")
def test_postgres_without_schema_says_upgrade(tmp_path: Path) -> None:
    err = one_line_error(renraku("school", "list", data_dir=tmp_path, database_url=PG_URL))
    assert err == "renraku school: the database has no schema yet; run renraku db upgrade"
    bad = PG_URL.rsplit(":", 1)[0] + ":1/none"  # nothing listens on port 1
    err = one_line_error(renraku("school", "list", data_dir=tmp_path, database_url=bad))
    assert "cannot open the database" in err and "check database_url" in err


async def _rows(data_dir: Path) -> tuple[list[School], list[Staff]]:
    engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'renraku.db'}")
    try:
        async with session_factory(engine)() as s:
            return (list(await s.scalars(select(School).order_by(School.id))),
                    list(await s.scalars(select(Staff).order_by(Staff.id))))
    finally:
        await engine.dispose()


def test_school_and_first_admin_on_a_fresh_database(tmp_path: Path) -> None:
    assert renraku("db", "upgrade", data_dir=tmp_path).returncode == 0
    made = renraku("school", "create", "--name", "さくら市立さくら小学校", "--reading",
                   "さくらしりつさくらしょうがっこう", "--cutoff", "19:30",
                   "--absence-line", "0120-123-456", data_dir=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("school 1 created: さくら市立さくら小学校")
    plain = renraku("school", "create", "--name", "ひまわり中学校", data_dir=tmp_path)
    assert plain.returncode == 0 and "school 2 created" in plain.stdout
    assert "set its reading" in plain.stdout  # a hint: the phone line needs the kana
    for args, says in [
        (["--name", "x", "--timezone", "Mars/Olympus"], "unknown timezone"),
        (["--name", "x", "--cutoff", "25:00"], "cutoff must be a time HH:MM"),
        (["--name", " "], "name is required"),
        (["--name", "x", "--languages", "ja,fr"], "languages"),
        (["--name", "x", "--absence-line", "12"], "not a valid phone number"),
    ]:
        assert says in one_line_error(renraku("school", "create", *args, data_dir=tmp_path))
    admin = renraku("staff", "create", "--admin", "Head@Sakura.example.jp", "--school", "1",
                    "--name", "校長 佐々木", data_dir=tmp_path,
                    public_url="https://renraku.example.jp")
    assert admin.returncode == 0, admin.stderr
    assert "staff 1 created: head@sakura.example.jp (admin)" in admin.stdout
    [link] = LINK.findall(admin.stdout)
    assert link.startswith("https://renraku.example.jp/password/reset/1/")
    assert "24 hours" in admin.stdout
    for args, says in [
        (["--admin", "head@sakura.example.jp", "--school", "1"], "already exists"),
        (["--admin", "x@sakura.example.jp", "--school", "9"], "no school with id 9"),
        (["--email", "x@sakura.example.jp", "--school", "1", "--role", "nurse", "--name",
          "x", "--password-prompt"], "at least 10 characters"),
    ]:
        assert says in one_line_error(renraku("staff", "create", *args, data_dir=tmp_path,
                                              stdin="short\n"))
    nurse = renraku("staff", "create", "--email", "hoken@sakura.example.jp", "--role", "nurse",
                    "--school", "1", "--password-prompt", data_dir=tmp_path,
                    stdin="nurse-password-1\n")
    assert nurse.returncode == 0 and "(nurse)" in nurse.stdout and not LINK.search(nurse.stdout)
    listed = renraku("school", "list", data_dir=tmp_path)
    assert "さくら市立さくら小学校" in listed.stdout and "0120-123-456" in listed.stdout
    schools, staff = asyncio.run(_rows(tmp_path))
    assert [(s.name, s.reading, s.phone_cutoff.strftime("%H:%M")) for s in schools] == [
        ("さくら市立さくら小学校", "さくらしりつさくらしょうがっこう", "19:30"),
        ("ひまわり中学校", "", "20:00")]
    assert [(p.email, p.role, p.school_id) for p in staff] == [
        ("head@sakura.example.jp", "admin", 1), ("hoken@sakura.example.jp", "nurse", 1)]
    assert staff[0].password_hash == ""  # nobody can sign in before the link is used
    assert verify_password(staff[1].password_hash, "nurse-password-1")
