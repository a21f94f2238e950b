"""Typed readers for settings that come from the environment.

A bad value raises ImproperlyConfigured naming the variable, so a misconfigured
deployment fails at startup instead of at the first request.
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of true/false, 1/0, yes/no, on/off.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not value >= minimum:  # also rejects NaN
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


_RATE = re.compile(r"^[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str) -> str | None:
    """A DRF throttle rate such as "100/s" or "6000/min"; unset or empty means no limit."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not _RATE.match(raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate: use N/s, N/min, N/hour or N/day.")
    return raw


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_DURATION = re.compile(r"^([0-9]+)(s|m|h|d|w)$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FOREVER = "forever"


def parse_duration(text: str) -> int | None:
    """Seconds in "90s", "15m", "12h", "7d" or "2w"; None for "forever". ValueError otherwise."""
    text = text.strip().lower()
    if text == FOREVER:
        return None
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"{text!r} is not a duration: use N followed by s, m, h, d or w (N > 0), or {FOREVER}")
    return int(match[1]) * _DURATION_SECONDS[match[2]]


def env_duration(name: str, *, forever: float | None = None) -> float | None:
    """A duration in seconds (see parse_duration), `forever` for "forever"; unset or empty means None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        seconds = parse_duration(raw)
        return forever if seconds is None else seconds
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}.") from None


_TOPIC_PATTERN = re.compile(r"^([A-Za-z0-9_]+|\*)(\.([A-Za-z0-9_]+|\*))*(\.>)?$|^>$")


def env_retention(name: str) -> tuple[int | None, tuple[tuple[str, int | None], ...]]:
    """A default retention and per-topic-pattern overrides: "7d,debug.>=1d,audit.*=forever".

    Returns (default seconds or None for forever, ((pattern, seconds or None), ...)).
    Unset or empty: keep everything.
    """
    raw = os.environ.get(name, "").strip()
    default, overrides = None, []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        pattern, has_pattern, duration = item.rpartition("=")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}.") from None
        if not has_pattern:
            default = seconds
        elif _TOPIC_PATTERN.match(pattern.strip()):
            overrides.append((pattern.strip(), seconds))
        else:
            raise ImproperlyConfigured(
                f"{name}: {pattern!r} is not a topic pattern: dot-separated segments of [A-Za-z0-9_] or *"
                " (one segment), optionally ending in > (one or more segments)."
            )
    return default, tuple(overrides)
