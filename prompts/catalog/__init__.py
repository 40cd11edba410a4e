"""The prompt catalog: keys and numbers (``keys.toml``) and one text file per language.

The TOML files in this folder are the one source of truth for what the phone says; see the
top of ``keys.toml`` for the key set and how the call flows use it.
"""

from __future__ import annotations

import hashlib
import string
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from renraku.settings import LANGUAGES

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Entry:
    key: str
    number: int
    about: str
    texts: dict[str, str]  # language → text
    fields: frozenset[str] = frozenset()  # {placeholders} (taken from the Japanese text)
    prerender: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def static(self) -> bool:
        """No {fields}: pre-rendered into a file and replaceable by a recording."""
        return not self.fields

    def text(self, lang: str) -> str:
        return self.texts[lang]

    def fill(self, lang: str, **values: Any) -> str:
        missing = self.fields - values.keys()
        if missing:
            raise KeyError(f"{self.key}: missing {sorted(missing)}")
        return self.texts[lang].format(**values)


def placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, Entry]
    problems: tuple[str, ...]  # missing texts, unknown keys, inconsistent fields

    def __getitem__(self, key: str) -> Entry:
        return self.entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.entries.values(), key=lambda e: e.number))

    def static(self) -> list[Entry]:
        return [e for e in self if e.static]

    def by_number(self, number: int) -> Entry | None:
        return next((e for e in self.entries.values() if e.number == number), None)


def load(folder: Path = HERE, languages: tuple[str, ...] = LANGUAGES) -> Catalog:
    with open(folder / "keys.toml", "rb") as fh:
        index: dict[str, dict[str, Any]] = tomllib.load(fh)
    texts: dict[str, dict[str, str]] = {}
    for lang in languages:
        with open(folder / f"{lang}.toml", "rb") as fh:
            texts[lang] = tomllib.load(fh)
    problems: list[str] = []
    numbers: dict[int, str] = {}
    entries: dict[str, Entry] = {}
    for key, meta in index.items():
        number = int(meta["number"])
        if number in numbers:
            problems.append(f"{key}: number {number} already used by {numbers[number]}")
        numbers[number] = key
        found = {lang: texts[lang][key] for lang in languages if texts[lang].get(key)}
        for lang in languages:
            if lang not in found:
                problems.append(f"{key}: no {lang} text")
        fieldsets = {lang: placeholders(t) for lang, t in found.items()}
        if len(set(fieldsets.values())) > 1:
            problems.append(f"{key}: fields differ between languages: {fieldsets}")
        fields = next(iter(fieldsets.values()), frozenset())
        entries[key] = Entry(key, number, str(meta.get("about", "")), found, fields,
                             dict(meta.get("prerender", {})))
    for lang in languages:
        for key in texts[lang].keys() - index.keys():
            problems.append(f"{key}: in {lang}.toml but not in keys.toml")
    return Catalog(entries, tuple(problems))


@cache
def catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    return load()
