"""Kana → Hepburn romaji, so espeak-ng can say a Japanese name's reading in en/zh/es.

Readings (ふりがな) are kana; espeak-ng has no Japanese and would spell kana out as
"Japanese letter". Romaji read by an English or Spanish voice is close to the real name.
"""

from __future__ import annotations

import re

_BASE = dict(zip(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
    "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽぁぃぅぇぉゔ",
    "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no "
    "ha hi fu he ho ma mi mu me mo ya yu yo ra ri ru re ro wa o n "
    "ga gi gu ge go za ji zu ze zo da ji zu de do ba bi bu be bo pa pi pu pe po "
    "a i u e o vu".split(),
    strict=True,
))
_SMALL_Y = {"ゃ": "a", "ゅ": "u", "ょ": "o"}
_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]+")


def _hiragana(text: str) -> str:
    # Katakana are hiragana shifted by 0x60; ー stays as the long-vowel mark.
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def kana_to_romaji(kana: str) -> str:
    s = _hiragana(kana)
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if c == "っ":  # doubles the next consonant
            roma = _BASE.get(nxt, "")
            out.append("t" if roma.startswith("ch") else roma[:1] if roma else "")
        elif c == "ー":
            out.append(out[-1][-1:] if out else "")
        elif nxt in _SMALL_Y and c in _BASE:
            roma = _BASE[c]
            stem = roma[:-1] if roma[:-1] in ("sh", "ch", "j") else roma[:-1] + "y"
            out.append(stem + _SMALL_Y[nxt])
            i += 1
        elif c == "ん" and nxt and _BASE.get(nxt, "x")[0] in "aiueoy":
            out.append("n'")
        else:
            out.append(_BASE.get(c, c))
        i += 1
    return "".join(out)


def romanise(text: str) -> str:
    """Every kana run in ``text`` as capitalised romaji; everything else unchanged."""
    def word(m: re.Match[str]) -> str:
        # Long vowels written plainly (Tarou → Taro) read better in English and Spanish.
        roma = kana_to_romaji(m.group()).replace("'", "").replace("ou", "o").replace("uu", "u")
        roma = roma.replace("oo", "o")
        return roma.capitalize()

    return _KANA.sub(word, text.replace("・", " "))
