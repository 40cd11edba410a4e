"""``renraku prompts``: build, check, list, import and roll back the phone's prompts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from renraku.settings import LANGUAGES, Settings


async def _with_db(settings: Settings, body: Callable[[Any], Awaitable[int]]) -> int:
    from models.db import create_engine, session_factory

    engine = create_engine(settings.db_url)
    try:
        return await body(session_factory(engine))
    finally:
        await engine.dispose()


async def _build(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import render

    async def body(factory: Any) -> int:
        report = await render.build(settings, factory, languages=args.lang or LANGUAGES,
                                    keys=args.key or None, force=args.force,
                                    names=not args.key, days_ahead=args.days,
                                    progress=sys.stderr)  # today's stderr, not import time's
        if not args.key:  # broadcasts about to call: their messages ready before dialling
            from prompts.campaign import prerender_pending

            try:
                report.prerendered += await prerender_pending(settings, factory)
            except Exception as exc:
                report.failed.append(f"campaigns: {exc}")
        engines = sorted({e for e in report.engines.values()})
        print(f"prompts: {len(report.rendered)} rendered ({', '.join(engines) or '-'}), "
              f"{report.up_to_date} up to date, {len(report.recorded_kept)} recordings kept, "
              f"{report.prerendered} template phrases cached, {report.restored} files restored "
              f"in {report.seconds:.1f} s")
        for failure in report.failed:
            print(f"  FAILED {failure}", file=sys.stderr)
        return 0 if report.ok else 1

    return await _with_db(settings, body)


async def _check(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import render

    async def body(factory: Any) -> int:
        cov = await render.check(settings, factory, languages=args.lang or LANGUAGES)
        for problem in cov.problems:
            print(f"catalog: {problem}")
        for c in cov.languages:
            state = "ok" if c.complete else "INCOMPLETE"
            print(f"{c.lang}: {c.ok}/{c.total} prompts playable ({c.recorded} recorded), "
                  f"{len(c.stale)} stale — {state}")
            for key in c.missing_file:
                print(f"  {c.lang}: no audio for {key}")
            for key in c.missing_text:
                print(f"  {c.lang}: no text for {key}")
            for key in c.stale:
                print(f"  {c.lang}: stale (text changed, run build) {key}")
        return 0 if cov.ok else 1

    return await _with_db(settings, body)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from prompts.catalog import catalog

    langs = args.lang or ["ja", "en"]
    print("Renraku phone prompts — enter the number on the admin recording line")
    print("(* = variable parts, always spoken by TTS, cannot be recorded)\n")
    for entry in catalog():
        mark = " " if entry.static else "*"
        print(f"{entry.number:>4}{mark} {entry.key}")
        for lang in langs:
            print(f"       {lang}: {entry.texts.get(lang, '(missing)')}")
    return 0


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import store

    async def body(factory: Any) -> int:
        try:
            prompt = await store.add_recording(factory, settings, args.key, args.language,
                                               args.file, staff_id=args.staff)
        except store.PromptError as exc:
            print(f"renraku prompts import: {exc.message}", file=sys.stderr)
            return 1
        print(f"{args.language}/{args.key}: version {prompt.version} active "
              f"(recorded, {prompt.duration_ms / 1000:.1f} s)")
        return 0

    return await _with_db(settings, body)


async def _rollback(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import store

    async def body(factory: Any) -> int:
        try:
            prompt = await store.rollback(factory, settings, args.key, args.language)
        except store.PromptError as exc:
            print(f"renraku prompts rollback: {exc.message}", file=sys.stderr)
            return 1
        print(f"{args.language}/{args.key}: version {prompt.version} ({prompt.source}) active")
        return 0

    return await _with_db(settings, body)


def _voices(settings: Settings, args: argparse.Namespace) -> int:
    from prompts.htsvoice import VoiceFetchError, ensure_openjtalk_voice

    try:
        path = ensure_openjtalk_voice(settings)
    except VoiceFetchError as exc:
        print(f"renraku prompts voices: {exc}", file=sys.stderr)
        return 1
    print(f"Open JTalk voice ready: {path}")
    return 0


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import dynamic

    path = await dynamic.render_cached(settings, args.language, " ".join(args.text))
    print(path)
    return 0


def _prune(settings: Settings, args: argparse.Namespace) -> int:
    from prompts import dynamic

    removed = dynamic.prune(settings, args.days)
    print(f"removed {removed} cached renders not played for {args.days} days")
    return 0


def run(settings: Settings, args: argparse.Namespace) -> Any:
    return {
        "build": _build, "check": _check, "list": _list, "import": _import,
        "rollback": _rollback, "voices": _voices, "say": _say, "prune": _prune,
    }[args.action](settings, args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="render, check, list and replace the phone prompts")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def lang_option(q: argparse.ArgumentParser) -> None:
        q.add_argument("--lang", action="append", choices=LANGUAGES,
                       help="only this language (repeatable; default: all)")

    q = actions.add_parser("build", help="render missing or changed prompts (TTS)")
    lang_option(q)
    q.add_argument("--key", action="append", help="only this key (repeatable)")
    q.add_argument("--force", action="store_true",
                   help="re-render every TTS prompt (recordings are still kept)")
    q.add_argument("--days", type=int, default=14, metavar="N",
                   help="also cache the date phrases of the next N days (default 14)")
    q = actions.add_parser("check", help="coverage per language; non-zero exit on gaps")
    lang_option(q)
    q = actions.add_parser("list", help="the numbered prompt list for the admin phone line")
    lang_option(q)
    q.set_defaults(needs_schema=False)
    q = actions.add_parser("import", help="make a recording (WAV/MP3/M4A) the active version")
    q.add_argument("key")
    q.add_argument("language", choices=LANGUAGES)
    q.add_argument("file")
    q.add_argument("--staff", type=int, help="staff id recorded as its author")
    q = actions.add_parser("rollback", help="make the previous version active again")
    q.add_argument("key")
    q.add_argument("language", choices=LANGUAGES)
    actions.add_parser("voices", help="fetch the Open JTalk voice (idempotent)").set_defaults(
        needs_schema=False)
    q = actions.add_parser("say", help="render a text on demand (cached); print the file")
    q.add_argument("language", choices=LANGUAGES)
    q.add_argument("text", nargs="+")
    q.set_defaults(needs_schema=False)
    q = actions.add_parser("prune", help="delete cached names/dates/messages not played lately")
    q.add_argument("--days", type=int, default=90, help="not played for N days (default 90)")
    q.set_defaults(needs_schema=False)
    p.set_defaults(func=run)
