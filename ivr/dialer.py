"""The broadcast dialer: originates campaign calls over AMI, paced and capped, crash-safe.

State lives in the database (``renraku.services.broadcast``); this loop only decides *when*
to call. Per call:

1. claim the household and write a CallAttempt (status dialing) — before dialling, so a
   crash right after the Originate leaves a row that a restart reconciles;
2. ``Originate`` (Async) with ``ChannelId`` = the attempt's action id, so the channel's
   Uniqueid names the attempt in every later AMI event and in CoreShowChannels;
3. the OriginateResponse says answered (the call flow in :mod:`ivr.broadcast_flow` takes
   over) or not (Reason + Hangup cause → busy / no answer / failed → retry later);
4. the channel's Hangup event frees the slot; an answered attempt that the call flow did
   not close (AGI never connected, say) is closed from what the database knows.

A call counts against ``dialer_max_channels`` from the claim until its Hangup is seen, so
the number of live channels never exceeds the cap, also across a restart (in-flight rows
of the previous run count until reconciled). The Hangup frees the slot at once and wakes
the loop, so the next household is dialled without waiting for the tick or for the
answered call's closing write (in a city, after a random wait of up to a tick, so every
app node's dialer gets its turn on the shared trunk). Attempts left in flight by a dead dialer are
checked against CoreShowChannels: live ones are adopted, gone ones closed (answered →
completed / hung up / left message; never answered → failed, retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from models import CallAttempt, Campaign, CampaignHousehold
from models.db import is_outage, transaction, write_through_outage
from models.enums import AttemptStatus
from renraku import metrics
from renraku.app import App
from renraku.rules import campaign as rules
from renraku.services import broadcast as bc

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 5.0


class AmiPort(Protocol):
    """What the dialer needs from an AMI client (see :class:`PanoramiskPort`)."""

    @property
    def connected(self) -> bool: ...

    async def action(self, fields: dict[str, Any], wait_s: float) -> list[Any]:
        """Send an action; all its responses/events (OriginateResponse for Async Originate)."""
        ...

    def on_event(self, pattern: str, callback: Callable[[Any], Any]) -> None: ...


class PanoramiskPort:
    """Adapter over a panoramisk ``Manager`` (ivr.ami's client or a bare one)."""

    def __init__(self, manager: Any, is_connected: Callable[[], bool] | None = None) -> None:
        self.manager = manager
        self._is_connected = is_connected

    @property
    def connected(self) -> bool:
        if self._is_connected is not None:
            return self._is_connected()
        m = self.manager
        if isinstance(getattr(type(m), "connected", None), property):
            return bool(m.connected)  # ivr.ami.AMIClient
        return bool(getattr(m, "_connected", False) and getattr(m, "authenticated", False))

    async def action(self, fields: dict[str, Any], wait_s: float) -> list[Any]:
        result = await asyncio.wait_for(self.manager.send_action(dict(fields)), wait_s)
        return list(result) if isinstance(result, list) else [result]

    def on_event(self, pattern: str, callback: Callable[[Any], Any]) -> None:
        def _cb(_manager: Any, event: Any) -> Any:
            return callback(event)

        self.manager.register_event(pattern, _cb)


def _get(msg: Any, key: str, default: str = "") -> str:
    try:
        value = msg.get(key)
    except AttributeError:
        value = None
    return default if value is None else str(value)


@dataclass
class Live:
    """A call this dialer holds a channel slot for."""

    attempt_id: int
    action_id: str
    campaign_id: int
    answered: bool = False
    flow: str = "broadcast"  # the FastAGI flow of the answered call (Campaign.flow)
    cause: int | None = None
    hangup: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False  # answered and hung up: its close is pending (maybe an outage)
    task: asyncio.Task[None] | None = None


# The demo's calls: the softphone or the built-in household (dialplans/demo.conf)
DEMO_CHANNEL = "Local/{number}@renraku-demo-out/n"


@dataclass
class DialerConfig:
    channel: str = "PJSIP/{number}@carrier"  # {number}: E.164 without "+", {e164}: with
    context: str = "renraku-broadcast"
    exten: str = "s"
    caller_id: str = ""
    ring_timeout_s: float = 30.0
    tick_s: float = 0.25
    # A Hangup closes an answered call this long after it, unless the call flow did first
    answer_grace_s: float = 1.5
    # In-flight rows older than this with no live channel are reconciled
    reconcile_after_s: float = 10.0
    # Another node's in-flight rows are closed from what the database knows once they are
    # this old (its dialer died; a live call of it would have ended or closed them): an
    # answered call still talking after a long call, any other after the ring timeout.
    foreign_unanswered_s: float = 120.0
    foreign_answered_s: float = 1800.0


Mailer = Callable[[Campaign], Awaitable[None]]
# Readies a campaign before its first call here (renders its TTS: prompts.campaign)
Prepare = Callable[[Campaign], Awaitable[None]]


class Dialer:
    def __init__(
        self,
        app: App,
        ami: AmiPort,
        config: DialerConfig | None = None,
        *,
        mailer: Mailer | None = None,
        prepare: Prepare | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.ami = ami
        self.config = config or DialerConfig()
        self.mailer = mailer
        self.prepare = prepare
        self._prepared: set[int] = set()
        self.mono = monotonic
        self.pacer = rules.Pacer(self.settings.dialer_originates_per_second)
        self.live: dict[str, Live] = {}
        self._in_flight_rows: set[str] = set()
        self._last_reconcile = -1e9
        self._was_connected = False
        self._db_down = False
        self._asterisk_started: str | None = None  # CoreStatus' startup time, last seen
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self.originated = 0
        self._progress_at: dict[int, float] = {}
        ami.on_event("Hangup", self._on_hangup)

    # -- running ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        log.info(
            "dialer: up to %d channels, %.1f originates/s",
            self.settings.dialer_max_channels, self.settings.dialer_originates_per_second,
        )
        try:
            while not stop.is_set():
                self._slot_freed.clear()
                try:
                    await self.tick(stop)
                    if self._db_down:
                        self._db_down = False
                        log.warning("dialer: database back; campaigns resume")
                except Exception as exc:
                    # A database hiccup must not end the campaign: log, wait, go on. While
                    # it is unreachable nothing is claimed, so no call is placed: paused.
                    if not is_outage(exc):
                        log.exception("dialer tick failed")
                    elif not self._db_down:
                        self._db_down = True
                        log.warning("dialer: database unreachable; campaigns paused")
                await self._pause(stop)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until the next tick, a stop, or a Hangup that freed a channel (idle channels
        between calls are what a campaign's wall time is made of)."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._slot_freed.wait())]
        try:
            await asyncio.wait(waits, timeout=self.config.tick_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self._slot_freed.is_set() and self.settings.node_name and not stop.is_set():
            # A city's app nodes each run a dialer on one trunk, and another node sees this
            # freed channel only at its tick: taken at once, it stayed here for good (one
            # node placed all 40 calls of a campaign). Up to a tick's wait, at random, and
            # each node's dialer takes it as often.
            await asyncio.sleep(random.uniform(0, self.config.tick_s))

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def tick(self, stop: asyncio.Event | None = None) -> None:
        if not self.ami.connected:
            if self._was_connected:
                log.warning("dialer: AMI connection lost; campaigns wait for it")
            self._was_connected = False
            return
        if not self._was_connected:
            # (Re)connected: events may have been missed, look at what is really live
            self._was_connected = True
            self._last_reconcile = -1e9
            await self._check_restart()
        if self.mono() - self._last_reconcile >= min(5.0, self.config.reconcile_after_s / 2):
            await self.reconcile()
        now = self.app.clock.now()
        async with transaction(self.app.sessions) as s:
            campaigns = await bc.runnable_campaigns(s, now)
            hours = {c.id: await bc.calling_hours(s, self.settings, c) for c in campaigns}
        for campaign in campaigns:
            if stop is not None and stop.is_set():
                return
            if self.mailer is not None and campaign.email:
                await self.mailer(campaign)
            if campaign.voice:
                await self._prepare(campaign)
                await self._dial_campaign(campaign, hours[campaign.id], stop)
            async with transaction(self.app.sessions) as s:
                fresh = await s.get(Campaign, campaign.id)
                if fresh is not None and await bc.finish_campaign_if_done(
                    s, fresh, self.app.clock.now()
                ):
                    log.info("campaign %d completed", campaign.id)
            await self._report_progress(campaign.id)

    async def _report_progress(self, campaign_id: int) -> None:
        """Campaign progress for the metrics, at most every PROGRESS_EVERY_S (it counts
        every household: not on each tick)."""
        if self.mono() - self._progress_at.get(campaign_id, -1e9) < PROGRESS_EVERY_S:
            return
        self._progress_at[campaign_id] = self.mono()
        async with self.app.sessions() as s:
            progress = await bc.progress(s, campaign_id)
        metrics.CAMPAIGN_HOUSEHOLDS.labels(campaign_id, "all").set(progress.households)
        metrics.CAMPAIGN_HOUSEHOLDS.labels(campaign_id, "done").set(progress.final)

    async def _prepare(self, campaign: Campaign) -> None:
        """Once per campaign and process, before its first call (a restart prepares again:
        renders are cached, so that is quick)."""
        if self.prepare is None or campaign.id in self._prepared:
            return
        self._prepared.add(campaign.id)
        try:
            await self.prepare(campaign)
        except Exception:
            # Calls still go out: the call flow renders what is missing when it needs it
            log.exception("campaign %d: preparing failed; calling anyway", campaign.id)

    def _release(self, action_id: str) -> None:
        self.live.pop(action_id, None)
        self._in_flight_rows.discard(action_id)

    def occupied(self) -> int:
        """Channels held: own calls until their Hangup, plus in-flight rows of a previous
        run not yet reconciled."""
        held = sum(1 for live in self.live.values() if not live.hangup.is_set())
        return held + len(self._in_flight_rows - self.live.keys())

    async def _dial_campaign(self, campaign: Campaign, hours: bc.CallingHours,
                             stop: asyncio.Event | None) -> None:
        metrics.DIALER_CAP.set(self.settings.dialer_max_channels)
        while True:
            metrics.DIALER_CHANNELS.set(self.occupied())
            free = rules.free_channels(self.settings.dialer_max_channels, self.occupied())
            if free <= 0 or not self.ami.connected or (stop is not None and stop.is_set()):
                return
            now = self.app.clock.now()
            if not rules.in_window(now, hours.tz, hours.start, hours.end):
                return  # nobody is called outside the window; due rows wait for the morning
            async with transaction(self.app.sessions) as s:
                fresh = await s.get(Campaign, campaign.id, populate_existing=True)
                if fresh is None or fresh.status != "running":
                    return  # paused or cancelled from the console
                due = await bc.due_households(s, campaign.id, now, 1)
            if not due:
                return
            wait = self.pacer.wait_for(self.mono())
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # re-check window, pause and channels after sleeping
            async with transaction(self.app.sessions) as s:
                attempt = await bc.start_attempt(
                    s, due[0].id, self.app.clock.now(), node=self.settings.node_name,
                    cap=self.settings.dialer_max_channels)
                household = due[0]
            if attempt is None and await self._trunk_full():
                return  # other nodes hold the trunk's channels: wait for a Hangup or tick
            if attempt is None:
                continue
            self.pacer.mark(self.mono())
            live = Live(attempt.id, attempt.action_id, campaign.id, flow=campaign.flow)
            self.live[attempt.action_id] = live
            live.task = self._spawn(self._originate(live, household))

    # -- one call -----------------------------------------------------------------------------

    def originate_fields(self, live: Live, household: CampaignHousehold) -> dict[str, Any]:
        number = household.phone_e164.lstrip("+")
        lang = household.language or "ja"
        return {
            "Action": "Originate",
            "ActionID": live.action_id,
            "ChannelId": live.action_id,
            "Channel": self.config.channel.format(number=number, e164=household.phone_e164),
            "Context": self.config.context,
            "Exten": self.config.exten,
            "Priority": "1",
            "Timeout": str(int(self.config.ring_timeout_s * 1000)),
            "CallerID": self.config.caller_id or "Renraku",
            "Async": "true",
            "Variable": [
                f"RENRAKU_ATTEMPT={live.attempt_id}",
                f"RENRAKU_HOUSEHOLD={household.id}",
                f"RENRAKU_CAMPAIGN={live.campaign_id}",
                f"RENRAKU_LANG={lang}",
                f"RENRAKU_FLOW={live.flow}",
                f"CHANNEL(language)={lang}",
            ],
        }

    async def _originate(self, live: Live, household: CampaignHousehold) -> None:
        self.originated += 1
        fields = self.originate_fields(live, household)
        try:
            msgs = await self.ami.action(fields, self.config.ring_timeout_s + 20)
        except Exception as exc:  # lost connection, timeout: reconciliation decides later
            log.warning("originate %s: no result (%s); reconciled later", live.action_id, exc)
            return
        first = msgs[0] if msgs else None
        if first is not None and _get(first, "Response").lower() == "error":
            await self._close(live, AttemptStatus.FAILED, reason=_get(first, "Message")[:64])
            await self._release_channel(live.attempt_id)  # no channel was ever made
            self._release(live.action_id)
            return
        result = next((m for m in msgs if _get(m, "Event") == "OriginateResponse"), None)
        if result is None:
            return
        if _get(result, "Response") == "Success":
            live.answered = True
            await asyncio.shield(self._mark_answered(live))
            if live.hangup.is_set():
                await self._after_hangup(live)
            return
        reason = int(_get(result, "Reason", "0") or 0)
        # The Hangup (with its Q.850 cause) usually arrives first; give it a moment
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.hangup.wait(), 2.0)
        outcome = rules.outcome_from_reason(reason)
        if outcome == AttemptStatus.FAILED and live.cause is not None:
            outcome = rules.outcome_from_cause(live.cause)
        if outcome == AttemptStatus.ANSWERED:  # "failed" yet answered: treat as hung up
            outcome = AttemptStatus.HUNG_UP
        await self._close(live, outcome, reason=f"reason {reason}")
        self._release(live.action_id)

    # The call's writes wait out a database outage (write_through_outage): the dialer
    # places no new call meanwhile (claiming one needs the database), and the calls already
    # up keep their outcome until it can be written, so none is retried or lost for it.

    async def _mark_answered(self, live: Live) -> None:
        now = self.app.clock.now()
        await write_through_outage(
            self.app.sessions, lambda s: bc.mark_answered(s, live.attempt_id, now),
            what=f"attempt {live.action_id} answered")

    async def _close(self, live: Live, outcome: AttemptStatus, reason: str = "") -> None:
        # Shielded: a stop that cancels this call's task must not cut a write in half
        # (SQLite would keep the write lock until the connection is collected).
        await asyncio.shield(self._close_db(live, outcome, reason))

    async def _close_db(self, live: Live, outcome: AttemptStatus, reason: str) -> None:
        now = self.app.clock.now()
        ended = await write_through_outage(
            self.app.sessions, lambda s: bc.finish_attempt(
                s, self.settings, live.attempt_id, outcome, now, cause=live.cause,
                reason=reason),
            what=f"attempt {live.action_id} {outcome}")
        if ended:
            log.info("attempt %s: %s (cause %s, %s)", live.action_id, outcome, live.cause, reason)

    def _on_hangup(self, event: Any) -> None:
        live = self.live.get(_get(event, "Uniqueid"))
        if live is None:
            return
        cause = _get(event, "Cause")
        live.cause = int(cause) if cause.isdigit() else None
        live.hangup.set()
        self._slot_freed.set()
        # Shielded: a stopping dialer must not cut this write off in the middle.
        self._spawn(asyncio.shield(self._release_channel(live.attempt_id)))
        if live.answered:
            live.closing = True
            self._spawn(self._after_hangup(live))

    async def _release_channel(self, attempt_id: int) -> None:
        """Tell every node's dialer that this call's trunk channel is free."""
        now = self.app.clock.now()
        await write_through_outage(
            self.app.sessions, lambda s: bc.release_channel(s, attempt_id, now),
            what=f"attempt {attempt_id} channel released")

    async def _after_hangup(self, live: Live) -> None:
        """An answered call ended: let the call flow write its outcome, else write it here."""
        await asyncio.sleep(self.config.answer_grace_s)
        await asyncio.shield(self._close_answered(live))
        self._release(live.action_id)

    async def _close_answered(self, live: Live) -> None:
        async def close(s: Any) -> None:
            attempt = await s.get(CallAttempt, live.attempt_id, populate_existing=True)
            if attempt is not None and attempt.status in rules.IN_FLIGHT_STATES:
                await bc.finish_attempt(
                    s, self.settings, attempt.id, bc.reconciled_outcome(attempt),
                    self.app.clock.now(), cause=live.cause, reason="closed on hangup",
                )

        # After an outage, the call flow's kept writes (message heard, answers, outcome)
        # land first: this close only decides from what they leave.
        await write_through_outage(self.app.sessions, close, settle_s=self.config.answer_grace_s,
                                   what=f"attempt {live.action_id} closed on hangup")

    # -- crash and reconnect safety -----------------------------------------------------------

    async def _check_restart(self) -> None:
        """On each (re)connect: did Asterisk restart meanwhile? Then every call whose Hangup
        this dialer has not seen died with it (its Hangup will never come)."""
        try:
            msgs = await self.ami.action({"Action": "CoreStatus"}, 10.0)
        except Exception as exc:
            log.warning("dialer: CoreStatus failed (%s)", exc)
            return
        started = next((f"{_get(m, 'CoreStartupDate')} {_get(m, 'CoreStartupTime')}"
                        for m in msgs if _get(m, "CoreStartupTime")), "")
        previous, self._asterisk_started = self._asterisk_started, started or None
        if previous is None or not started or started == previous:
            return
        cut = [live for live in self.live.values() if not live.hangup.is_set()]
        log.warning("dialer: Asterisk restarted; %d call(s) in progress were cut", len(cut))
        for live in cut:
            live.closing = True  # reconcile leaves it to _close_cut
            live.hangup.set()
            self._slot_freed.set()
            self._spawn(self._close_cut(live))

    async def _close_cut(self, live: Live) -> None:
        # The call flow writes its outcome when its AGI connection drops: let it land first,
        # then correct it (a family cut off before the message is called again).
        await asyncio.sleep(self.config.answer_grace_s)
        now = self.app.clock.now()
        outcome = await write_through_outage(
            self.app.sessions, lambda s: bc.close_cut_attempt(
                s, self.settings, live.attempt_id, now, "cut: Asterisk restarted"),
            what=f"attempt {live.action_id} cut by a restart")
        log.info("attempt %s cut by the Asterisk restart → %s", live.action_id,
                 outcome or "kept as written")
        await self._release_channel(live.attempt_id)
        self._release(live.action_id)

    async def live_channel_ids(self) -> set[str]:
        msgs = await self.ami.action({"Action": "CoreShowChannels"}, 10.0)
        return {
            _get(m, "Uniqueid") for m in msgs if _get(m, "Event") == "CoreShowChannel"
        }

    async def reconcile(self) -> None:
        """Compare in-flight rows with AMI's live channels; adopt or close each."""
        self._last_reconcile = self.mono()
        try:
            channels = await self.live_channel_ids()
        except Exception as exc:
            log.warning("reconcile: CoreShowChannels failed (%s)", exc)
            return
        now = self.app.clock.now()
        too_old = now - timedelta(seconds=self.config.reconcile_after_s)
        async with transaction(self.app.sessions) as s:
            rows = await bc.unreleased_attempts(s)
        mine_only = []
        for attempt in rows:
            if attempt.node != self.settings.node_name:
                if self._foreign_stale(attempt, now):
                    await self._close_foreign(attempt, now)
            elif attempt.status in rules.IN_FLIGHT_STATES:
                mine_only.append(attempt)
            elif attempt.action_id not in channels and (
                    attempt.action_id not in self.live
                    or self.live[attempt.action_id].hangup.is_set()):
                await self._release_channel(attempt.id)  # ended; its Hangup went unseen
        rows_ids = set()
        for attempt in mine_only:
            mine = self.live.get(attempt.action_id)
            if attempt.action_id in channels:
                rows_ids.add(attempt.action_id)
                if mine is None:
                    # A call of a previous run still going: adopt it so its Hangup closes it
                    self.live[attempt.action_id] = Live(
                        attempt.id, attempt.action_id,
                        await self._campaign_of(attempt),
                        answered=attempt.answered_at is not None
                        or attempt.status == AttemptStatus.ANSWERED,
                    )
                    log.info("reconcile: adopted live call %s", attempt.action_id)
                continue
            if mine is not None and (mine.closing or (mine.task is not None
                                                       and not mine.task.done())):
                rows_ids.add(attempt.action_id)
                continue  # our own originate or close is still under way
            if attempt.started_at > too_old:
                rows_ids.add(attempt.action_id)  # may not have a channel yet; look again soon
                continue
            outcome = bc.reconciled_outcome(attempt)
            async with transaction(self.app.sessions) as s:
                await bc.finish_attempt(
                    s, self.settings, attempt.id, outcome, now, reason="reconciled: no channel"
                )
                await bc.release_channel(s, attempt.id, now)
            log.info("reconcile: %s had no channel → %s", attempt.action_id, outcome)
            self._release(attempt.action_id)
        # Slots held for calls whose rows are closed and whose channels are gone
        for action_id, live in list(self.live.items()):
            if action_id in channels or action_id in rows_ids:
                continue
            if live.task is not None and not live.task.done():
                continue
            self._release(action_id)
        self._in_flight_rows = rows_ids

    def _foreign_stale(self, attempt: CallAttempt, now: datetime) -> bool:
        # Only a call still talking may last long: an ended one waits for its Hangup only.
        talking = attempt.status == AttemptStatus.ANSWERED
        limit = self.config.foreign_answered_s if talking else self.config.foreign_unanswered_s
        return attempt.started_at < now - timedelta(seconds=limit)

    async def _close_foreign(self, attempt: CallAttempt, now: datetime) -> None:
        """Another node's call its dead dialer left holding a channel: close and free it
        from what the database knows (another node's Asterisk is not ours to ask)."""
        async with transaction(self.app.sessions) as s:
            if attempt.status in rules.IN_FLIGHT_STATES:
                await bc.finish_attempt(s, self.settings, attempt.id,
                                        bc.reconciled_outcome(attempt), now,
                                        reason=f"reconciled: node {attempt.node} gone")
            await bc.release_channel(s, attempt.id, now)
        log.info("reconcile: %s of node %r left holding a channel → freed",
                 attempt.action_id, attempt.node)

    async def _trunk_full(self) -> bool:
        async with self.app.sessions() as s:
            return await bc.held_channels(s) >= self.settings.dialer_max_channels

    async def _campaign_of(self, attempt: CallAttempt) -> int:
        async with self.app.sessions() as s:
            h = await s.get(CampaignHousehold, attempt.household_id)
            return h.campaign_id if h is not None else 0
