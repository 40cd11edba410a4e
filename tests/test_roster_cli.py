"""``renraku roster import|export`` and ``renraku year rollover`` as an office runs them."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from models import School
from models.db import create_engine, session_factory, transaction
from tests.test_cli import renraku

HEADER = "学籍番号,学年,組,出席番号,氏,名,ふりがな,生年月日\r\n"
ROWS = ["1,1,1,1,青木,一郎,あおき いちろう,2020-05-01", "2,1,2,1,馬場,二郎,ばば じろう,",
        "3,2,1,1,千葉,三郎,ちば さぶろう,2019-07-01"]


def make_school(data_dir: Path) -> None:
    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'renraku.db'}")
        async with transaction(session_factory(engine)) as s:
            s.add(School(name="第一小学校"))
        await engine.dispose()

    asyncio.run(run())


def test_import_dry_run_errors_export_and_rollover(tmp_path: Path) -> None:
    assert renraku("db", "upgrade", data_dir=tmp_path).returncode == 0
    make_school(tmp_path)
    roster = tmp_path / "roster.csv"
    roster.write_bytes((HEADER + "\r\n".join([*ROWS, "4,1,1,2,森,林,,"]) + "\r\n")
                       .encode("cp932"))
    bad = renraku("roster", "import", str(roster), "--school", "1", "--year", "2025",
                  "--create-classes", data_dir=tmp_path)
    assert bad.returncode == 1
    assert "Line 5: student 4 has no reading" in bad.stderr and "nothing imported" in bad.stderr
    roster.write_bytes((HEADER + "\r\n".join(ROWS) + "\r\n").encode("cp932"))
    dry = renraku("roster", "import", str(roster), "--school", "1", "--year", "2025",
                  "--create-classes", "--dry-run", data_dir=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "cp932" in dry.stdout and "3 to add" in dry.stdout and "new class: 1年2組" in dry.stdout
    assert "dry run: nothing written" in dry.stdout
    for expected in ("3 to add", "3 unchanged"):
        done = renraku("roster", "import", str(roster), "--school", "1", "--year", "2025",
                       "--create-classes", data_dir=tmp_path)
        assert done.returncode == 0 and expected in done.stdout, done.stderr
    wrong = renraku("roster", "import", str(roster), "--school", "1", "--encoding", "utf-8",
                    data_dir=tmp_path)
    assert wrong.returncode == 1 and "not valid utf-8 text (line 1)" in wrong.stderr
    unknown = renraku("roster", "import", str(roster), "--school", "9", data_dir=tmp_path)
    assert unknown.returncode == 2 and "no school with id 9" in unknown.stderr
    out = renraku("roster", "export", "--school", "1", "--year", "2025", data_dir=tmp_path)
    rows = list(csv.reader(io.StringIO(out.stdout.removeprefix("\ufeff"))))
    assert rows[1] == ["1", "1", "1", "1", "青木", "一郎", "あおき いちろう", "2020-05-01"]
    assert len(rows) == 4
    args = ("year", "rollover", "--school", "1", "--to", "2026")  # it is after 1 April 2026
    preview = renraku(*args, "--dry-run", data_dir=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert "2 enrolments in 2 classes, 1 graduate(s) (grade 2)" in preview.stdout
    assert renraku(*args, data_dir=tmp_path).returncode == 0
    again = renraku(*args, data_dir=tmp_path)
    assert again.returncode == 1 and "2026 has been rolled over already" in again.stderr
    after = renraku("roster", "export", "--school", "1", "--year", "2026", data_dir=tmp_path)
    assert [r[:3] for r in csv.reader(io.StringIO(after.stdout.removeprefix("\ufeff")))][1:] \
        == [["1", "2", "1"], ["2", "2", "2"]]
