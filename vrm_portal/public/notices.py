"""Who runs the portal, as the help page and every page's footer show it (GDPR art. 13:
the operator, how to reach its data protection officer, where to complain)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperatorNotice:
    name: str
    address: str
    #: As configured: an email address or an http(s) URL.
    dpo_contact: str
    #: The link to it: ``mailto:`` for an address, the URL itself otherwise.
    dpo_href: str
    authority_name: str
    authority_url: str


def operator_notice(config: Mapping[str, Any]) -> OperatorNotice:
    """The notice from the settings (``config.py`` checked them at start-up)."""
    contact = config["DPO_CONTACT"]
    web = contact.startswith(("http://", "https://"))
    return OperatorNotice(
        name=config["OPERATOR_NAME"],
        address=config["OPERATOR_ADDRESS"],
        dpo_contact=contact,
        dpo_href=contact if web else f"mailto:{contact}",
        authority_name=config["SUPERVISORY_AUTHORITY_NAME"],
        authority_url=config["SUPERVISORY_AUTHORITY_URL"],
    )
