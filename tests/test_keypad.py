"""Read's arguments for a menu (ivr.keypad); the calls themselves: test_keypad_asterisk."""

from __future__ import annotations

import pytest

from ivr.keypad import in_language, read_args, read_sounds


def test_a_menu_reads_one_key_with_no_terminator() -> None:
    args = read_args([("ja", "renraku/a"), ("ja", "renraku/dyn/b")], "ja", 1, 5000)
    assert args == "RENRAKU_KEYS,renraku/a&renraku/dyn/b,1,t(),1,5"
    assert read_sounds(args) == ["renraku/a", "renraku/dyn/b"]


def test_a_number_ends_at_hash_which_alone_is_the_result() -> None:
    assert read_args([("en", "renraku/t")], "en", 4, 2500) == (
        "RENRAKU_KEYS,renraku/t,4,t(#)e,1,2.5")


def test_sounds_of_another_language_are_named_by_their_folder() -> None:
    assert in_language("renraku/x", "en", "ja") == "en/renraku/x"
    assert in_language("renraku/x", "ja", "ja") == "renraku/x"
    url = "http://10.0.0.13:8080/sounds/en/renraku/versions/x.v2.wav"
    assert in_language(url, "en", "ja") == url  # a URL names its language already
    assert in_language("/var/lib/x", "en", "ja") == "/var/lib/x"


@pytest.mark.parametrize("name", ["a,b", 'a"b', "a\nb"])
def test_names_read_cannot_take_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        read_args([("ja", name)], "ja", 1, 5000)
