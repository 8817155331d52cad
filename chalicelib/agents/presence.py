"""When an agent counts as online, when its last-seen time is worth a write, and
whether its sequence numbers show that the server missed messages.

Last-seen is written coarsely: only once the stored value is two heartbeat
intervals old. An agent that heartbeats every interval therefore never has a
stored last-seen older than about two intervals, and "online" (seen within three
intervals) stays true between writes, at one write per two heartbeats at most.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: Online means seen within this many heartbeat intervals.
ONLINE_INTERVALS = 3
#: Last-seen is rewritten once the stored value is this many intervals old.
TOUCH_INTERVALS = 2
#: Heartbeats the server may not have written, beyond those the elapsed time explains.
SEQUENCE_SLACK = 2


def online_window(interval_seconds: int) -> timedelta:
    """How recently an agent must have been seen to count as online."""
    return timedelta(seconds=ONLINE_INTERVALS * max(interval_seconds, 1))


def is_online(last_seen: datetime | None, disconnected: bool, now: datetime,
              interval_seconds: int) -> bool:
    """Seen within three heartbeat intervals and not disconnected since."""
    if last_seen is None or disconnected:
        return False
    return now - last_seen < online_window(interval_seconds)


def status(*, revoked: bool, online: bool) -> str:
    """The agent's status as the API shows it: revoked, online or offline."""
    if revoked:
        return "revoked"
    return "online" if online else "offline"


def needs_touch(last_seen: datetime | None, now: datetime, interval_seconds: int) -> bool:
    """Whether the stored last-seen is old enough to be rewritten."""
    if last_seen is None:
        return True
    return now - last_seen >= timedelta(seconds=TOUCH_INTERVALS * max(interval_seconds, 1))


def missed_messages(stored_seq: int | None, stored_at: datetime | None, seq: int,
                    now: datetime, interval_seconds: int) -> bool:
    """Whether ``seq`` shows messages the server never saw.

    Only messages that changed something (and coarse last-seen touches) store
    their sequence number, so plain heartbeats in between are expected. A number
    lower than the stored one (the agent restarted or replays) is always a loss of
    state; a jump larger than the heartbeats the elapsed time can explain (plus
    some slack for agents that poll faster) means status reports went missing.
    """
    if stored_seq is None:
        return False
    if seq < stored_seq:
        return True
    if stored_at is None:
        return False
    elapsed = max((now - stored_at).total_seconds(), 0.0)
    explained = int(elapsed // max(interval_seconds, 1)) + SEQUENCE_SLACK
    return seq - stored_seq - 1 > explained
