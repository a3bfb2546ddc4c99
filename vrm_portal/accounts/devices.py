"""Readable names of the device and browser behind a session's user-agent string.

The parsing is ua-parser's (the maintained uap-core rules); this module only says the
result in plain words: "Firefox 133 on Windows", "Safari on iPhone".
"""

from __future__ import annotations

from functools import lru_cache

import ua_parser
from flask_babel import gettext as _

#: Families that are only a mobile flavour of a browser people know by its plain name.
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
}
_SYSTEM_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
#: Devices named by the device rather than the system ("on iPhone", not "on iOS").
_NAMED_DEVICES = {"iPhone", "iPad", "iPod"}
#: Safari's version is the system's: it says nothing more to the reader.
_UNVERSIONED = {"Safari"}


@lru_cache(maxsize=1024)
def _parts(user_agent: str) -> tuple[str | None, str | None, str | None]:
    """(browser, its major version, system or device), each None when not recognised."""
    result = ua_parser.parse(user_agent[:512])
    browser = version = system = None
    if result.user_agent is not None and result.user_agent.family != "Other":
        family = result.user_agent.family
        browser = _BROWSER_NAMES.get(family, family)
        if browser not in _UNVERSIONED:
            version = result.user_agent.major
    if result.device is not None and result.device.family in _NAMED_DEVICES:
        system = result.device.family
    elif result.os is not None and result.os.family != "Other":
        system = _SYSTEM_NAMES.get(result.os.family, result.os.family)
    return browser, version, system


def describe_device(user_agent: str | None) -> str | None:
    """The browser and device in plain words, or None when nothing is recognised."""
    if not user_agent:
        return None
    browser, version, system = _parts(user_agent)
    if browser and version:
        browser = f"{browser} {version}"
    if browser and system:
        return str(_("%(browser)s on %(system)s", browser=browser, system=system))
    if browser:
        return browser
    if system:
        return str(_("A browser on %(system)s", system=system))
    return None
