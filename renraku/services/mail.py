"""Outgoing email over SMTP (aiosmtplib), plain text with an optional HTML part.

Every email is built by :func:`build`, so each carries the same headers (a Date from the
caller's clock and a Message-ID: spam filters mark mail without them).

A failure is logged with the recipient and raised as MailError: the caller decides what
the person sees ("we could not send the email, try again"); nothing fails silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from renraku.settings import Settings

log = logging.getLogger(__name__)
Send = Callable[[EmailMessage], Awaitable[None]]


class MailError(Exception):
    """The SMTP server refused the message or could not be reached."""


def build(sender: str, to: str, subject: str, text: str, html: str | None = None, *,
          now: datetime) -> EmailMessage:
    """``sender`` is the From (settings.smtp_from); ``now`` (timezone-aware) the Date."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    # The sender's domain, also behind a display name ("School <a@b>")
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
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
                    html: str | None = None, *, now: datetime) -> None:
    """``now``: the caller's clock, for the Date header."""
    await send_message(settings, build(settings.smtp_from, to, subject, text, html, now=now))


def sender(settings: Settings) -> Send:
    """A ``Send`` callable (as renraku.services.events expects) bound to these settings."""

    async def send(msg: EmailMessage) -> None:
        await send_message(settings, msg)

    return send
