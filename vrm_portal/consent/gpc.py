"""Global Privacy Control: a signed-in consumer's browser sending ``Sec-GPC: 1`` withdraws
every sale/sharing consent given before the signal, and the page says so (DESIGN §5)."""

from __future__ import annotations

from flask import Flask, flash, request
from flask_babel import gettext as _
from flask_login import current_user

from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import honour_gpc, version_of
from vrm_portal.consent.signing import current_notary
from vrm_portal.consent.web import change_from_request, gpc_signal, page_locale
from vrm_portal.extensions import db

_SKIPPED_ENDPOINTS = {"static", "health.healthz", "health.readyz"}


def init_app(app: Flask) -> None:
    app.before_request(apply_signal)


def apply_signal() -> None:
    if not gpc_signal() or request.endpoint in _SKIPPED_ENDPOINTS:
        return
    if not current_user.is_authenticated:
        return
    account = current_user.account
    withdrawn = honour_gpc(
        db.session,
        current_notary(),
        account,
        change=change_from_request(CollectionMethod.GPC_SIGNAL),
    )
    if withdrawn:
        locale = page_locale()
        names = ", ".join(
            f"{p.brand.name}: {version_of(db.session, p).title(locale)}" for p in withdrawn
        )
        flash(
            _(
                "Your browser sent a Global Privacy Control signal, so we withdrew your "
                "consent to sharing your data with third parties (%(purposes)s).",
                purposes=names,
            ),
            "info",
        )
