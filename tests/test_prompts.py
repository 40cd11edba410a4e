"""Prompts: catalog, spoken dates, TTS engines, build/check, versions, recordings, cache."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Prompt
from models.enums import PromptSource, ReportKind, ReportReason
from prompts import dynamic, render, store, tts
from prompts.audio import wav_info
from prompts.catalog import catalog, load, placeholders
from prompts.phrases import format_date, spoken_date, spoken_time
from prompts.romaji import romanise
from prompts.voice import PromptVoice
from renraku import cli
from renraku.settings import LANGUAGES
from tests.db_fixtures import Database
from tests.prompts_fixtures import PromptWorld, offline_settings, open_world

ROOT = Path(__file__).resolve().parent.parent

# -- catalog --------------------------------------------------------------------------------


def test_catalog_has_every_key_in_all_four_languages_with_the_same_fields() -> None:
    cat = catalog()
    assert cat.problems == ()
    for entry in cat:
        assert set(entry.texts) == set(LANGUAGES), entry.key
        assert {placeholders(t) for t in entry.texts.values()} == {entry.fields}, entry.key
    numbers = [e.number for e in cat]
    assert len(numbers) == len(set(numbers))


def test_catalog_check_catches_a_missing_language_and_a_lost_field(tmp_path: Path) -> None:
    for name in ("keys", *LANGUAGES):
        (tmp_path / f"{name}.toml").write_bytes((ROOT / "prompts/catalog" / f"{name}.toml")
                                                .read_bytes())
    es = (tmp_path / "es.toml").read_text()
    es = es.replace('"absence.goodbye" = "Gracias por su llamada. Adiós."\n', "")
    es = es.replace('"Para {name}, pulse {digit}."', '"Para {nombre}, pulse {digit}."')
    (tmp_path / "es.toml").write_text(es)
    problems = load(tmp_path).problems
    assert any("absence.goodbye: no es text" in p for p in problems)
    assert any(p.startswith("absence.child_option: fields differ") for p in problems)


def test_every_key_the_call_flows_use_is_in_the_catalog() -> None:
    cat = catalog()
    used: set[str] = set()
    for source in (ROOT / "ivr").glob("*.py"):
        text = source.read_text()
        used |= set(re.findall(r'"((?:absence|broadcast|admin|digit)\.[a-z_.0-9]+)"', text))
        if 'f"absence.kind.{' in text:
            used |= {f"absence.kind.{k}" for k in ReportKind}
        if 'f"absence.reason.{' in text:
            used |= {f"absence.reason.{r}" for r in ReportReason}
    assert used, "no prompt keys found in ivr/"
    assert sorted(used - cat.entries.keys()) == []


def test_japanese_is_polite_and_the_language_menu_speaks_each_language() -> None:
    cat = catalog()
    for entry in cat.static():
        ja = entry.text("ja")
        if len(ja) > 12 and "digit." not in entry.key:
            assert re.search(r"(です|ます|ません|ください|でした|ました|せん)。?$", ja) or (
                ja.endswith("。")), entry.key
    option = cat["absence.language_option"]
    assert option.fill("ja", digit=1) == "日本語は1を押してください。"
    assert option.fill("en", digit=2) == "For English, press 2."
    assert option.fill("zh", digit=3) == "中文请按3。"
    assert option.fill("es", digit=4) == "Para español, pulse 4."


# -- dates, times, names --------------------------------------------------------------------

FRI = date(2026, 12, 4)


@pytest.mark.parametrize(("lang", "written", "spoken"), [
    ("ja", "12月4日（金）", "12月4日 金曜日"),
    ("en", "Friday, December 4", "Friday, December 4"),
    ("zh", "12月4日 星期五", "12月4日 星期五"),
    ("es", "viernes 4 de diciembre", "viernes 4 de diciembre"),
])
def test_dates_per_language_from_babel(lang: str, written: str, spoken: str) -> None:
    assert format_date(FRI, lang) == written
    assert spoken_date(FRI, lang) == spoken


@pytest.mark.parametrize(("lang", "half_past_ten", "one_pm"), [
    ("ja", "10時30分", "13時"),
    ("en", "10:30 AM", "1:00 PM"),
    ("zh", "上午10点30分", "下午1点"),
    ("es", "las 10:30", "la 13:00"),
])
def test_times_per_language(lang: str, half_past_ten: str, one_pm: str) -> None:
    assert spoken_time(clock_time(10, 30), lang) == half_past_ten
    assert spoken_time(clock_time(13, 0), lang) == one_pm


def test_kana_readings_are_romanised_for_espeak() -> None:
    assert romanise("やまだ たろう") == "Yamada Taro"
    assert romanise("For さとう しょうへい, press 1.") == "For Sato Shohei, press 1."
    assert romanise("きっかわ まりあ") == "Kikkawa Maria"


async def test_kanji_without_a_reading_is_read_the_japanese_way_in_english(
    tmp_path: Path, openjtalk_voice: Path
) -> None:
    espeak = tts.Espeak(offline_settings(tmp_path))
    spoken = romanise(await espeak._kanji_to_kana("A message from 第一小学校."))
    assert spoken.split() == ["A", "message", "from", "Daiichishogakko", "."]


def test_chinese_is_spoken_from_pinyin() -> None:
    # espeak-ng's packaged Mandarin dictionary spells many characters out in English.
    assert tts.to_pinyin("中文请按3。") == "zhong1 wen2 qing3 an4 3."
    assert tts.to_pinyin("上午10点30分") == "shang4 wu3 10 dian3 30 fen1"
    assert tts.Espeak.VOICES["zh"] == "cmn-latn-pinyin"


# -- engines --------------------------------------------------------------------------------


def _names(engines: list[tts.TTSEngine]) -> list[str]:
    return [e.name for e in engines]


def test_japanese_never_goes_to_espeak(tmp_path: Path) -> None:
    for chain in ("espeak", "espeak,gtts", "gtts,espeak,openjtalk", ""):
        settings = offline_settings(tmp_path, tts_ja=chain)
        assert "espeak" not in _names(tts.chain(settings, "ja"))
        assert _names(tts.chain(settings, "ja"))[-1] == "openjtalk"
    assert not tts.Espeak(offline_settings(tmp_path)).supports("ja")


async def test_gtts_unreachable_falls_back_and_is_probed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[str] = []

    def dead(host: str, port: int = 443, timeout: float = 1.5) -> bool:
        probes.append(host)
        return False

    monkeypatch.setattr(tts, "probe", dead)
    tts.reset_reachability()
    settings = offline_settings(tmp_path, tts_en="gtts,espeak", tts_ja="gtts,openjtalk")
    assert _names(tts.chain(settings, "en")) == ["gtts", "espeak"]
    assert (await tts.pick(settings, "en")).name == "espeak"
    assert (await tts.pick(settings, "es")).name == "espeak"
    started = time.monotonic()
    path = await dynamic.render_cached(settings, "en", "Fallback works.")
    assert time.monotonic() - started < 5
    assert wav_info(path).rate == 8000
    assert probes == ["translate.google.com"]  # negative result cached for the process
    tts.reset_reachability()


async def test_japanese_kanji_sentence_through_open_jtalk(
    tmp_path: Path, openjtalk_voice: Path
) -> None:
    settings = offline_settings(tmp_path)
    assert (await tts.pick(settings, "ja")).name == "openjtalk"
    speech = await tts.synthesize(settings, "ja", "山田太郎さんの欠席連絡を受け付けました。",
                                  tmp_path)
    assert speech.engine == "openjtalk" and speech.voice == "mei_normal"
    path = await dynamic.render_cached(settings, "ja", "山田太郎さんの欠席連絡を受け付けました。")
    info = wav_info(path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert 2000 < info.duration_ms < 10000


# -- the whole catalog, built once ----------------------------------------------------------


@pytest.fixture(scope="session")
async def built(
    tmp_path_factory: pytest.TempPathFactory, openjtalk_voice: Path
) -> AsyncIterator[tuple[PromptWorld, render.BuildReport]]:
    world, engine = await open_world(tmp_path_factory.mktemp("prompts") / "data")
    report = await render.build(world.settings, world.sessions, progress=None)
    print(f"\nfull prompt build, offline engines: {len(report.rendered)} files + "
          f"{report.prerendered} template phrases in {report.seconds:.1f} s", file=sys.stderr)
    yield world, report
    await engine.dispose()  # type: ignore[attr-defined]


async def test_full_build_covers_all_four_languages(built: tuple[PromptWorld, render.BuildReport],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    world, report = built
    assert report.ok, report.failed
    static = len(catalog().static())
    assert len(report.rendered) == static * 4
    engines = {label.split("/")[0]: e.split(":")[0] for label, e in report.engines.items()}
    assert engines == {"ja": "openjtalk", "en": "espeak", "zh": "espeak", "es": "espeak"}
    cov = await render.check(world.settings, world.sessions)
    assert cov.ok and [c.ok for c in cov.languages] == [static] * 4
    for lang in LANGUAGES:
        info = wav_info(store.active_path(world.settings, lang, "absence.welcome"))
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
        assert info.duration_ms > 1500
    with capsys.disabled():
        print(f"\n[prompts] full build with offline engines: {report.seconds:.1f} s")


def test_cli_check_and_list(built: tuple[PromptWorld, render.BuildReport],
                            monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    world, _ = built
    monkeypatch.setenv("RENRAKU_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("RENRAKU_DATABASE_URL", world.settings.db_url)
    for key, value in (("TTS_JA", "openjtalk"), ("TTS_EN", "espeak"), ("TTS_ZH", "espeak"),
                       ("TTS_ES", "espeak")):
        monkeypatch.setenv(f"RENRAKU_{key}", value)
    assert cli.main(["prompts", "check"]) == 0
    out = capsys.readouterr().out
    static = len(catalog().static())
    assert all(f"{lang}: {static}/{static} prompts playable" in out for lang in LANGUAGES)
    assert cli.main(["prompts", "list", "--lang", "ja"]) == 0
    out = capsys.readouterr().out
    assert " 200  absence.welcome" in out and " 208* absence.child_option" in out
    # A missing file is a gap: check fails until build puts it back.
    store.active_path(world.settings, "es", "absence.goodbye").unlink()
    assert cli.main(["prompts", "check", "--lang", "es"]) == 1
    assert "no audio for absence.goodbye" in capsys.readouterr().out
    assert cli.main(["prompts", "build", "--lang", "es"]) == 0
    assert "0 rendered" in capsys.readouterr().out  # restored from its version file
    assert cli.main(["prompts", "check"]) == 0


async def test_voice_plays_built_prompts_and_renders_templates(
    built: tuple[PromptWorld, render.BuildReport],
) -> None:
    world, _ = built
    voice = PromptVoice(world.settings, world.sessions)
    assert await voice.phrase("absence.welcome", "ja") == "renraku/absence.welcome"
    name = await voice.phrase("absence.language_option", "zh", digit=3)
    assert name.startswith("renraku/dyn/")
    assert await voice.recording("absence.welcome", "ja") is None  # TTS, not a recording
    assert await voice.recording("no-such-recording", "ja") is None
    assert (await voice.text("en", "  ")).endswith("/silence")


# -- stale detection, recordings, rollback (a small world of their own) ----------------------

KEYS = ["absence.goodbye", "absence.recorded", "absence.kind.late"]


def _tone(path: Path, seconds: float, *extra: str) -> Path:
    import subprocess

    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(path), "synth", str(seconds),
                    "sine", "440", *extra], check=True)
    return path


def _mp3(src: Path, dst: Path) -> Path:
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), str(dst)], check=True)
    return dst


async def _versions(world: PromptWorld, key: str, lang: str) -> list[tuple[int, str, bool]]:
    async with world.sessions() as s:
        return [(p.version, p.source, p.active) for p in await store.history(s, key, lang)]


async def test_changed_text_rerenders_only_that_prompt_and_recordings_survive(
    prompt_world: PromptWorld,
) -> None:
    w = prompt_world
    first = await render.build(w.settings, w.sessions, languages=["en", "ja"], keys=KEYS,
                               templates=False, progress=None)
    assert len(first.rendered) == 6
    again = await render.build(w.settings, w.sessions, languages=["en", "ja"], keys=KEYS,
                               templates=False, progress=None)
    assert again.rendered == [] and again.up_to_date == 6

    await store.add_recording(w.sessions, w.settings, "absence.recorded", "en",
                              _tone(w.settings.data_dir / "rec.wav", 2.0), staff_id=None)
    cat = catalog()
    changed = {k: e for k, e in cat.entries.items()}
    for key in ("absence.goodbye", "absence.recorded"):
        e = cat[key]
        changed[key] = type(e)(e.key, e.number, e.about,
                               {**e.texts, "en": e.texts["en"] + " See you."}, e.fields)
    new_cat = type(cat)(changed, ())
    third = await render.build(w.settings, w.sessions, languages=["en", "ja"], keys=KEYS,
                               templates=False, progress=None, cat=new_cat)
    assert third.rendered == ["en/absence.goodbye"]  # the recorded one is not replaced
    assert third.recorded_kept == ["en/absence.recorded"]
    assert await _versions(w, "absence.goodbye", "en") == [(1, "tts", False), (2, "tts", True)]
    assert await _versions(w, "absence.recorded", "en") == [
        (1, "tts", False), (2, "recorded", True)]
    forced = await render.build(w.settings, w.sessions, languages=["en"], keys=KEYS,
                                templates=False, progress=None, force=True, cat=new_cat)
    assert "en/absence.recorded" not in forced.rendered
    assert (await _versions(w, "absence.recorded", "en"))[-1] == (2, "recorded", True)


async def _state(world: PromptWorld) -> tuple[int, list[str], bytes]:
    async with world.sessions() as s:
        rows = await s.scalar(select(func.count()).select_from(Prompt))
    files = sorted(str(p.relative_to(world.settings.sounds_dir))
                   for p in world.settings.sounds_dir.rglob("*") if p.is_file())
    active = store.active_path(world.settings, "ja", "absence.goodbye")
    return int(rows or 0), files, active.read_bytes() if active.exists() else b""


@pytest.mark.parametrize(("kind", "message_key"), [
    ("not_audio", "admin.recording_not_audio"),
    ("empty", "admin.recording_empty"),
    ("too_long", "admin.recording_too_long"),
    ("silent", "admin.recording_too_short"),
])
async def test_bad_recordings_are_refused_and_change_nothing(
    prompt_world: PromptWorld, kind: str, message_key: str,
) -> None:
    w = prompt_world
    await render.build(w.settings, w.sessions, languages=["ja"], keys=["absence.goodbye"],
                       templates=False, progress=None)
    before = await _state(w)
    bad = w.settings.data_dir / f"{kind}.wav"
    if kind == "not_audio":
        bad.write_text("これは音声ではありません。\n" * 50)
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "too_long":
        _tone(bad, 121)
    else:
        _tone(bad, 2.0, "vol", "0")
    with pytest.raises(store.RecordingError) as caught:
        await store.add_recording(w.sessions, w.settings, "absence.goodbye", "ja", bad)
    assert caught.value.message_key == message_key
    assert caught.value.message.startswith(store.MESSAGES[message_key])
    assert message_key in catalog()  # the admin phone line can say why
    assert await _state(w) == before


async def test_good_import_becomes_active_and_rollback_restores_the_previous(
    prompt_world: PromptWorld,
) -> None:
    w = prompt_world
    await render.build(w.settings, w.sessions, languages=["ja"], keys=["absence.goodbye"],
                       templates=False, progress=None)
    tts_bytes = store.active_path(w.settings, "ja", "absence.goodbye").read_bytes()
    mp3 = w.settings.data_dir / "goodbye.mp3"
    _mp3(_tone(w.settings.data_dir / "src.wav", 3.0), mp3)
    prompt = await store.add_recording(w.sessions, w.settings, "absence.goodbye", "ja", mp3)
    assert (prompt.version, prompt.source, prompt.active) == (2, PromptSource.RECORDED, True)
    assert 2900 < prompt.duration_ms < 3200
    active = store.active_path(w.settings, "ja", "absence.goodbye")
    info = wav_info(active)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert active.read_bytes() != tts_bytes

    back = await store.rollback(w.sessions, w.settings, "absence.goodbye", "ja")
    assert (back.version, back.source) == (1, "tts")
    assert active.read_bytes() == tts_bytes
    assert await _versions(w, "absence.goodbye", "ja") == [(1, "tts", True),
                                                           (2, "recorded", False)]
    with pytest.raises(store.PromptError) as caught:
        await store.rollback(w.sessions, w.settings, "absence.goodbye", "ja")
    assert caught.value.message_key == "admin.no_previous"
    again = await store.activate(w.sessions, w.settings, "absence.goodbye", "ja", 2)
    assert again.active and active.read_bytes() != tts_bytes

    with pytest.raises(store.PromptError) as caught:  # templates are TTS only
        await store.add_recording(w.sessions, w.settings, "absence.child_option", "ja", mp3)
    assert caught.value.message_key == "admin.not_recordable"

    voice = PromptVoice(w.settings, w.sessions)
    assert await voice.recording("absence.goodbye", "ja") == "renraku/absence.goodbye"


def test_cli_import_and_rollback(prompt_world: PromptWorld, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    w = prompt_world
    monkeypatch.setenv("RENRAKU_DATA_DIR", str(w.settings.data_dir))
    monkeypatch.setenv("RENRAKU_DATABASE_URL", w.settings.db_url)
    empty = w.settings.data_dir / "empty.wav"
    empty.write_bytes(b"")
    assert cli.main(["prompts", "import", "rec-notice-1", "en", str(empty)]) == 1
    assert "empty" in capsys.readouterr().err
    good = _tone(w.settings.data_dir / "notice.wav", 1.5)
    assert cli.main(["prompts", "import", "rec-notice-1", "en", str(good)]) == 0
    assert cli.main(["prompts", "import", "rec-notice-1", "en", str(good)]) == 0
    assert "version 2 active" in capsys.readouterr().out
    assert cli.main(["prompts", "rollback", "rec-notice-1", "en"]) == 0
    assert "version 1 (recorded) active" in capsys.readouterr().out
    assert cli.main(["prompts", "rollback", "rec-notice-1", "en"]) == 1


# -- dynamic cache --------------------------------------------------------------------------


async def test_same_text_is_synthesised_once(
    prompt_world: PromptWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real = tts.synthesize

    async def counting(settings, lang, text, workdir, start=None):  # type: ignore[no-untyped-def]
        calls.append((lang, text))
        return await real(settings, lang, text, workdir, start)

    monkeypatch.setattr(tts, "synthesize", counting)
    s = prompt_world.settings
    first = await dynamic.say_text(s, "en", "The sports day is moved to Saturday.")
    second = await dynamic.say_text(s, "en", "The sports day  is moved to Saturday. ")
    assert first == second and first.startswith("renraku/dyn/")
    assert len(calls) == 1
    together = await asyncio.gather(*(dynamic.say_text(s, "ja", "運動会は土曜日に延期します。")
                                      for _ in range(5)))
    assert len(set(together)) == 1 and len(calls) == 2  # concurrent asks: one render
    path = s.sounds_dir / "ja" / f"{together[0]}.wav"
    assert wav_info(path).rate == 8000
    # Cached by another engine of the chain (e.g. offline while the network was down):
    # used as it is, no new synthesis, no network probe.
    online = s.replace(tts_en="gtts,espeak")
    assert await dynamic.say_text(online, "en", "The sports day is moved to Saturday.") == first
    assert len(calls) == 2
    old = time.time() - 100 * 86400
    os.utime(path, (old, old))
    assert dynamic.prune(s, 90) == 1 and not path.exists()


async def test_names_are_prerendered_at_registration(
    prompt_world: PromptWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.db import transaction
    from tests.factories import make_child, make_guardian, make_school

    w = prompt_world
    async with transaction(w.sessions) as s:
        school = await make_school(s, languages=["ja", "en"])
        taro = await make_child(s, school, "山田太郎", "やまだ たろう")
        jiro = await make_child(s, school, "山田次郎", "やまだ じろう")
        await make_guardian(s, "山田花子", "090-1000-2000", "zh", (taro, jiro))
    names = await dynamic.prerender_names(w.settings, w.sessions, taro)
    # ja, en (school) and zh (guardian): the name, "about", and menu keys 1 and 2
    assert len(names) == 3 * 4
    calls: list[str] = []

    async def no_tts(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append("tts")
        raise AssertionError("a call had to wait for TTS")

    monkeypatch.setattr(tts, "synthesize", no_tts)
    voice = PromptVoice(w.settings, w.sessions)
    for lang in ("ja", "en", "zh"):
        assert await voice.phrase("absence.child_option", lang, name=taro.spoken_name, digit=2)
        assert await voice.phrase("absence.about_child", lang, name=taro.spoken_name)
    assert calls == []


async def test_versions_on_both_databases(db: Database, tmp_path: Path) -> None:
    """The one-active-version index and rollback behave the same on SQLite and PostgreSQL."""
    settings = offline_settings(tmp_path / "data", database_url=db.url)
    report = await render.build(settings, db.sessions, languages=["en"],
                                keys=["absence.goodbye"], templates=False, progress=None)
    assert report.rendered == ["en/absence.goodbye"]
    tone = _tone(tmp_path / "tone.wav", 1.0)
    for _ in range(2):
        await store.add_recording(db.sessions, settings, "absence.goodbye", "en", tone)
    async with db.sessions() as s:
        versions = [(p.version, p.source, p.active) for p in
                    await store.history(s, "absence.goodbye", "en")]
    assert versions == [(1, "tts", False), (2, "recorded", False), (3, "recorded", True)]
    assert (await store.rollback(db.sessions, settings, "absence.goodbye", "en")).version == 2
    assert (await store.rollback(db.sessions, settings, "absence.goodbye", "en")).version == 1
    assert (await store.activate(db.sessions, settings, "absence.goodbye", "en", 3)).active
    async with db.sessions() as s:
        actives = await s.scalar(select(func.count()).select_from(Prompt).where(Prompt.active))
    assert actives == 1
