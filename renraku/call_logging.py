"""Every log line of a call names the call: Asterisk's unique id (``agi_uniqueid``).

The FastAGI server sets :data:`CALL_ID` when a call connects; everything the call's task
and the tasks it starts log then carries ``call_id`` (and ``call_tag``, `` [ivr2-…]`` or
nothing), whatever logger wrote it. Asterisk logs the same id from the dialplan
(``[renraku-fastagi]``), so one grep follows a call across an IVR node and an app node.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

CALL_ID: contextvars.ContextVar[str] = contextvars.ContextVar("renraku_call_id", default="")
FORMAT = "%(asctime)s %(levelname)s %(name)s%(call_tag)s: %(message)s"

_installed = False


def install() -> None:
    """Give every LogRecord ``call_id``/``call_tag`` (once per process; idempotent).

    A record factory rather than a handler filter: it reaches records of every logger and
    handler, pytest's capture included, without knowing which handlers exist.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        call = CALL_ID.get()
        record.call_id = call
        record.call_tag = f" [{call}]" if call else ""
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
