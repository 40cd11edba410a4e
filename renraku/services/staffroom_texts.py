"""Texts of the staff-room emails in the recipient's language (ja, en, zh, es).

Emails leave from the dialer and FastAGI processes, which do not load the web portal's
catalogs; like renraku.services.broadcast_mail, they keep their four languages here.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "family_subject": {
        "ja": "{school}: {child}さんがまだ登校していません",
        "en": "{school}: {child} has not arrived at school",
        "zh": "{school}: {child}还没有到校",
        "es": "{school}: {child} no ha llegado a la escuela",
    },
    "family_body": {
        "ja": "{child}さんがまだ登校していません。欠席の場合は、{url} から連絡いただくか、"
              "学校にお電話ください。",
        "en": "{child} has not arrived at school. If your child is absent today, please "
              "report it at {url} or call the school.",
        "zh": "{child}还没有到校。如果孩子今天缺席，请在 {url} 报告或致电学校。",
        "es": "{child} no ha llegado a la escuela. Si hoy falta, avísenos en {url} o llame "
              "a la escuela.",
    },
    "alert_subject": {
        "ja": "【至急】{child}さん: 保護者は欠席を把握していません",
        "en": "URGENT: {child}'s family did not know about the absence",
        "zh": "【紧急】{child}: 家长不知道孩子缺席",
        "es": "URGENTE: la familia de {child} no sabía de la ausencia",
    },
    "alert_body": {
        "ja": "{school}の確認電話で、{child}さんの保護者({guardian})が「知らなかった」と"
              "回答しました。すぐに確認してください: {url}",
        "en": "On {school}'s follow-up call, {child}'s guardian ({guardian}) answered "
              "\"did not know\". Please act now: {url}",
        "zh": "在{school}的确认电话中，{child}的家长({guardian})回答“不知道”。请立即处理: {url}",
        "es": "En la llamada de seguimiento de {school}, el tutor de {child} ({guardian}) "
              "respondió \"no lo sabía\". Actúe ahora: {url}",
    },
    "digest_subject": {
        "ja": "{school} 朝の出欠まとめ {day}",
        "en": "{school} morning summary {day}",
        "zh": "{school} 早间出勤汇总 {day}",
        "es": "{school} resumen de la mañana {day}",
    },
    "digest_line": {
        "ja": "{name}: 連絡あり {reported} / 未確認の欠席 {unexplained} / 出席 {present}"
              " / 未点呼 {unmarked}",
        "en": "{name}: reported {reported} / unexplained {unexplained} / present {present}"
              " / not marked {unmarked}",
        "zh": "{name}: 已报告 {reported} / 未说明缺席 {unexplained} / 出席 {present}"
              " / 未点名 {unmarked}",
        "es": "{name}: avisados {reported} / sin explicar {unexplained} / presentes {present}"
              " / sin marcar {unmarked}",
    },
    "board_subject": {
        "ja": "【職員連絡】{subject}",
        "en": "[Staff board] {subject}",
        "zh": "【教职员通知】{subject}",
        "es": "[Tablón del personal] {subject}",
    },
    "board_body": {
        "ja": "{author}さんから職員連絡があります。本文と添付は職員ページでご覧ください: {url}",
        "en": "{author} posted a message for you on the staff board. Read it (and any "
              "attachments) on the staff pages: {url}",
        "zh": "{author}在教职员通知栏给您发了消息。请在教职员页面查看正文和附件: {url}",
        "es": "{author} le ha dejado un mensaje en el tablón del personal. Léalo (con sus "
              "adjuntos) en las páginas del personal: {url}",
    },
}


def text(key: str, lang: str, **fields: object) -> str:
    """The text in ``lang`` (Japanese when the language is unknown), fields filled in."""
    variants = TEXTS[key]
    return variants.get(lang, variants["ja"]).format(**fields)
