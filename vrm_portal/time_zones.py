"""The reader's time zone: which one, how a time names it, and the zones to choose from.

Times are stored, and leave the portal (brand API, webhooks, export), in UTC. A person
reads them in their own zone: the account's (chosen in the settings, or the first one its
browser reported), else the one this browser reported (``static/time-zone.js`` posts it;
it is kept in the ``vrm_time_zone`` cookie), else UTC. Flask-Babel converts every date
and time it formats to that zone (``select_time_zone`` is its selector), and every time
shown names its zone: "Dec 3, 2026, 10:30:00 AM (Europe/Paris)", "3 déc. 2026, 10:30:00
(Europe/Paris)". A date alone is the date in that zone.

Emails, rendered by the job worker outside any request, use their recipient's zone, and
the printable export keeps UTC: both through ``force_time_zone``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import available_timezones

import pytz
from babel import dates
from flask import has_request_context, request
from flask_babel import _get_current_context, get_locale, get_timezone, to_user_timezone
from flask_babel import lazy_gettext as _l
from flask_login import current_user

UTC_NAME = "UTC"
#: Where a browser's reported zone is kept: a cookie of its own, not the session, so that
#: the script's request can never overwrite a session cookie that a sign-in just set.
COOKIE_NAME = "vrm_time_zone"
#: Longer names are not zones (the longest is 32 characters).
MAX_LENGTH = 64
#: The regions of the choice list, in the order shown, with their names in the page's
#: language; the cities stay in the IANA names' English.
REGIONS = {
    "Europe": _l("Europe"),
    "America": _l("Americas"),
    "Africa": _l("Africa"),
    "Asia": _l("Asia"),
    "Australia": _l("Australia"),
    "Pacific": _l("Pacific"),
    "Indian": _l("Indian Ocean"),
    "Atlantic": _l("Atlantic"),
    "Antarctica": _l("Antarctica"),
    "Arctic": _l("Arctic"),
}

_FORMATS = ("short", "medium", "long", "full")


@functools.cache
def known_zones() -> frozenset[str]:
    """IANA zone names the portal accepts: those of ``zoneinfo`` (the system's database,
    else the ``tzdata`` package) that pytz, with which Flask-Babel converts, knows too."""
    return frozenset(available_timezones() & pytz.all_timezones_set)


def is_known_zone(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_LENGTH and name in known_zones()


def browser_time_zone() -> str | None:
    """The zone this browser reported (its cookie), when it is one we know."""
    if not has_request_context():
        return None
    reported = request.cookies.get(COOKIE_NAME)
    return reported if is_known_zone(reported) else None


def account_time_zone() -> str | None:
    """The signed-in account's zone, when it has one."""
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return None
    chosen = current_user.account.time_zone
    return chosen if is_known_zone(chosen) else None


def time_zone_detection() -> str | None:
    """Whether this page runs ``static/time-zone.js``, for ``base.html``: None when it
    need not (outside a request, or the account has its zone), else the zone this browser
    last reported ("" for none, and for an account still without one), which the script
    does not report again."""
    if not has_request_context():
        return None
    if current_user and current_user.is_authenticated:
        return None if account_time_zone() else ""
    return browser_time_zone() or ""


def select_time_zone() -> str:
    """Flask-Babel's selector: the account's zone, else the browser's, else UTC."""
    return account_time_zone() or browser_time_zone() or UTC_NAME


def current_zone_name() -> str:
    return str(getattr(get_timezone(), "zone", None) or UTC_NAME)


@contextmanager
def force_time_zone(name: str | None) -> Iterator[None]:
    """Format in zone ``name`` (UTC when it is None or unknown) inside the block: an email
    in its recipient's zone, the export in UTC."""
    zone = pytz.timezone(name if is_known_zone(name) else UTC_NAME)
    # Where Flask-Babel keeps the zone it chose for this context (as force_locale does).
    state = _get_current_context()
    missing = object()
    before = getattr(state, "babel_tzinfo", missing)
    state.babel_tzinfo = zone
    try:
        yield
    finally:
        if before is missing:
            del state.babel_tzinfo
        else:
            state.babel_tzinfo = before


def zone_label(name: str) -> str:
    """How a zone is named on a page: its IANA name, spaces for underscores
    ("America/New York")."""
    return name.replace("_", " ")


def format_moment(value: datetime, format: str = "medium") -> str:
    """A date and time in the reader's zone and language, the zone named:
    "Dec 3, 2026, 10:30:00 AM (Europe/Paris)". Naive values are taken as UTC.

    Replaces Flask-Babel's ``datetimeformat`` filter, so that no template can show a
    time without its zone. The named formats use their date part; the time is always
    the medium one (the long and full ones would name the zone a second time, in a
    form that differs between zones and languages)."""
    locale = get_locale()
    local = to_user_timezone(value)
    if format in _FORMATS:
        time_text = dates.format_time(
            local, "short" if format == "short" else "medium", tzinfo=None, locale=locale
        )
        date_text = dates.format_date(local, format, locale=locale)
        text = (
            locale.datetime_formats[format]
            .replace("'", "")
            .replace("{0}", time_text)
            .replace("{1}", date_text)
        )
    else:
        text = dates.format_datetime(local, format, tzinfo=None, locale=locale)
    return f"{text} ({zone_label(current_zone_name())})"


def zone_choices(keep: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """The choice list, grouped by region, UTC first: the regions' zones in pytz's list
    of common zones, and ``keep`` (an older or rarer name that a browser reported)."""
    names = {
        name
        for name in pytz.common_timezones
        if name.partition("/")[0] in REGIONS and name in known_zones()
    }
    other = None
    if keep and keep != UTC_NAME and is_known_zone(keep):
        if keep.partition("/")[0] in REGIONS:
            names.add(keep)
        else:
            other = keep
    groups: dict[str, list[tuple[str, str]]] = {
        str(_l("Coordinated Universal Time")): [(UTC_NAME, UTC_NAME)]
    }
    for region, title in REGIONS.items():
        cities = sorted(
            (
                (name, zone_label(name.partition("/")[2]))
                for name in names
                if name.startswith(region + "/")
            ),
            key=lambda choice: choice[1],
        )
        if cities:
            groups[str(title)] = cities
    if other:
        groups[str(_l("Other names"))] = [(other, zone_label(other))]
    return groups
