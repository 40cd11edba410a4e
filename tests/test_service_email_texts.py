"""The services' emails speak from the translation catalogs, word for word as before.

Event change, important notice and proxy-registration emails used to keep per-language
tables in their modules; their texts now live in webportal/locale. These expectations are
the emails those tables rendered, so a msgid edited in the code without its catalog entry
(gettext would fall back to the English msgid) or a translation changed by accident fails
here. Rendered with the testing catalogs: a missing string would show as ⟦msgid⟧. The
broadcast email is pinned as it was before it was built by renraku.services.mail.build.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models import Campaign, EmailDelivery, EventChange, Guardian, Notice, School
from renraku import i18n
from renraku.rules.phone import PhoneNumber
from renraku.services import broadcast_mail, events, family_reach, proxy
from renraku.settings import Settings


@pytest.fixture(autouse=True)
def marked_catalogs():
    i18n.load(mark_missing=True)
    yield
    i18n.load()


SCHOOL = School(name="Sakura School", timezone="Asia/Tokyo")
NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
BEFORE = {"title": "Old", "starts_at": "2026-12-01T01:00:00+00:00",
          "ends_at": "2026-12-01T02:00:00+00:00", "place": "Gym", "note": "n"}


def guardian(lang: str) -> Guardian:
    return Guardian(name="Tanaka", language=lang, email="a@example.org")


def moved_change() -> EventChange:
    """Moved to the next day and another place (all day: no clock-format details of CLDR)."""
    before = dict(BEFORE, all_day=True)
    after = dict(before, title="Sports day", starts_at="2026-12-02T01:00:00+00:00",
                 ends_at="2026-12-02T03:00:00+00:00", place="Field")
    return EventChange(action="changed", before=before, after=after)


def test_event_change_email_in_every_language() -> None:
    expected = {
        "ja": ("【予定変更】Sports day（Sakura School）",
               "Tanaka 様\n\n次の予定が変更されました。\n\n■ Sports day\n"
               "日時: 2026年12月2日水曜日\n"
               "  (変更前: 2026年12月1日火曜日)\n場所: Field  (変更前: Gym)\n"
               "備考: n\n\nカレンダーでもご確認いただけます: https://x/calendar\n\n"
               "Sakura School\n"),
        "en": ("Event changed: Sports day (Sakura School)",
               "Dear Tanaka,\n\nThe following event has changed.\n\n■ Sports day\n"
               "When: Wednesday, December 2, 2026\n"
               "  (Before: Tuesday, December 1, 2026)\n"
               "Place: Field  (Before: Gym)\nNote: n\n\n"
               "See it on your calendar: https://x/calendar\n\nSakura School\n"),
        "zh": ("【日程变更】Sports day（Sakura School）",
               "Tanaka 您好:\n\n以下日程已变更。\n\n■ Sports day\n"
               "时间: 2026年12月2日星期三\n"
               "  (变更前: 2026年12月1日星期二)\n地点: Field  (变更前: Gym)\n"
               "备注: n\n\n也可以在日历中查看: https://x/calendar\n\nSakura School\n"),
        "es": ("Evento modificado: Sports day (Sakura School)",
               "Estimado/a Tanaka:\n\nEl siguiente evento ha cambiado.\n\n■ Sports day\n"
               "Cuándo: miércoles, 2 de diciembre de 2026\n"
               "  (Antes: martes, 1 de diciembre de 2026)\n"
               "Lugar: Field  (Antes: Gym)\nNota: n\n\n"
               "Véalo en su calendario: https://x/calendar\n\nSakura School\n"),
    }
    for lang, (subject, body) in expected.items():
        msg = events.change_email(moved_change(), guardian(lang), SCHOOL, "s@example.org",
                                  "https://x/calendar", NOW)
        assert (msg["Subject"], msg.get_content()) == (subject, body), lang


def test_event_cancelled_email_and_unknown_language_falls_back_to_japanese() -> None:
    cancelled = EventChange(action="cancelled", before=BEFORE,
                            after=dict(BEFORE, title="Sports day", place="", note=""))
    msg = events.change_email(cancelled, guardian("es"), SCHOOL, "s", "https://x/calendar",
                              NOW)
    assert msg["Subject"] == "Evento cancelado: Sports day (Sakura School)"
    assert msg.get_content().startswith(
        "Estimado/a Tanaka:\n\nEl siguiente evento ha sido cancelado.\n")
    assert "Lugar" not in msg.get_content() and "Nota" not in msg.get_content()
    msg = events.change_email(cancelled, guardian("fr"), SCHOOL, "s", "https://x/calendar",
                              NOW)
    assert msg["Subject"] == "【中止】Sports day（Sakura School）"
    assert msg.get_content().startswith("Tanaka 様\n\n次の予定は中止になりました。\n")


def test_important_notice_email_in_every_language() -> None:
    notice = Notice(title="Closure", body="Body text", translations={"en": {"title": "Closed"}})
    expected = {
        "ja": ("【重要】Closure（Sakura School）",
               "Tanaka 様\n\nSakura Schoolから重要なお知らせです。", "お知らせの一覧: https://x/n"),
        "en": ("Important: Closed (Sakura School)",
               "Dear Tanaka,\n\nAn important notice from Sakura School.",
               "All notices: https://x/n"),
        "zh": ("【重要】Closure（Sakura School）",
               "Tanaka 您好:\n\nSakura School发来重要通知。", "全部通知: https://x/n"),
        "es": ("Importante: Closure (Sakura School)",
               "Estimado/a Tanaka:\n\nUn aviso importante de Sakura School.",
               "Todos los avisos: https://x/n"),
    }
    for lang, (subject, intro, outro) in expected.items():
        msg = family_reach.notice_email(notice, guardian(lang), SCHOOL, "s", "https://x/n",
                                        NOW)
        title = "Closed" if lang == "en" else "Closure"
        assert msg["Subject"] == subject, lang
        assert msg.get_content() == (
            f"{intro}\n\n■ {title}\n\nBody text\n\n{outro}\n\nSakura School\n"), lang


def test_proxy_completion_email_in_every_language() -> None:
    phone = PhoneNumber("+81312345678", "landline")
    expected = {
        "ja": ("【Sakura】連絡システムへの登録が完了しました",
               "Tanaka 様\n\nKen さんの保護者として、学校が代理で登録しました。\n"
               "欠席・遅刻・早退の連絡は、登録した電話番号（03-1234-5678）から学校の連絡専用"
               "ダイヤルにお電話ください。24時間受け付けています。\n\nSakura\n"),
        "en": ("[Sakura] Your registration is complete",
               "Dear Tanaka,\n\nThe school has registered you as a guardian of Ken.\n"
               "To report an absence, late arrival or early leave, call the school's contact "
               "line from your registered number (03-1234-5678), any time of day.\n\nSakura\n"),
        "zh": ("【Sakura】联络系统登记完成",
               "Tanaka 您好:\n\n学校已代您登记为Ken的监护人。\n如需请假、迟到或早退,"
               "请用登记的电话号码(03-1234-5678)拨打学校的联络专线,24小时受理。\n\nSakura\n"),
        "es": ("[Sakura] Su registro está completo",
               "Estimado/a Tanaka:\n\nLa escuela le ha registrado como tutor/a de Ken.\n"
               "Para avisar de una ausencia, llegada tarde o salida temprana, llame a la línea "
               "de la escuela desde su número registrado (03-1234-5678), a cualquier hora."
               "\n\nSakura\n"),
    }
    for lang, (subject, body) in expected.items():
        msg = proxy.completion_email(guardian(lang), "Ken", "Sakura", phone, "s", NOW)
        assert msg is not None
        assert (msg["Subject"], msg.get_content()) == (subject, body), lang
    no_email = Guardian(name="Tanaka", language="ja", email=None)
    assert proxy.completion_email(no_email, "Ken", "Sakura", phone, "s", NOW) is None


def test_broadcast_email_with_survey_and_read_link() -> None:
    settings = Settings(public_url="https://x", smtp_from="school@sakura.test")
    campaign = Campaign(title="Trip", message={"ja": "明日は遠足です", "en": "Trip tomorrow"})
    delivery = EmailDelivery(address="a@example.org", token="tok",
                             token_expires_at=datetime(2026, 12, 14, 1, 0, tzinfo=UTC))
    msg = broadcast_mail.compose(settings, campaign, SCHOOL, guardian("en"), delivery, True,
                                 NOW, closes_at=datetime(2026, 12, 10, 8, 0, tzinfo=UTC))
    assert (msg["Subject"], msg.get_content()) == (
        "Message from Sakura School: Trip",
        "Trip tomorrow\n\n明日は遠足です\n\n"
        "Please answer the survey (no login needed): https://x/s/tok\n\n"
        "Answers are accepted until 2026-12-10 17:00 (JST).\n\n"
        "This link works until 2026-12-14 01:00 UTC.\n")
    msg = broadcast_mail.compose(settings, campaign, SCHOOL, guardian("ja"), delivery, False,
                                 NOW)
    assert (msg["Subject"], msg.get_content()) == (
        "Sakura Schoolからのお知らせ: Trip",
        "明日は遠足です\n\n"
        "お読みになったら、このリンクを開いて学校にお知らせください: https://x/m/tok\n\n"
        "このリンクの有効期限: 2026-12-14 01:00 UTC\n")
