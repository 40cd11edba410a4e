"""Outgoing email over SMTP (aiosmtplib), plain text with an optional HTML part.

A failure is logged with the recipient and raised as MailError: the caller decides what
the person sees ("we could not send the email, try again"); nothing fails silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from renraku.settings import Settings

log = logging.getLogger(__name__)
Send = Callable[[EmailMessage], Awaitable[None]]


class MailError(Exception):
    """The SMTP server refused the message or could not be reached."""


def build(settings: Settings, to: str, subject: str, text: str,
          html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


async def send_message(settings: Settings, msg: EmailMessage) -> None:
    try:
        await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=20,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.error("email to %s (%s) not sent: %s", msg["To"], msg["Subject"], exc)
        raise MailError(str(exc)) from exc
    log.info("email sent to %s: %s", msg["To"], msg["Subject"])


async def send_mail(settings: Settings, to: str, subject: str, text: str,
                    html: str | None = None) -> None:
    await send_message(settings, build(settings, to, subject, text, html))


def sender(settings: Settings) -> Send:
    """A ``Send`` callable (as renraku.services.events expects) bound to these settings."""

    async def send(msg: EmailMessage) -> None:
        if not msg.get("From"):
            msg["From"] = settings.smtp_from
        await send_message(settings, msg)

    return send
