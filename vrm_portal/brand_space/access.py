"""The brand space's gate: every route answers 404 to whoever may not use it.

The blueprint is exempt from the app-wide CSRF check so that this gate answers first
(an outsider's POST gets the same 404 as a GET); every POST still checks its CSRF token
through its ``FlaskForm``.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from vrm_portal.accounts.models import Account
from vrm_portal.brand_space import service
from vrm_portal.brand_space.models import FormSubmission
from vrm_portal.brands.models import Brand
from vrm_portal.extensions import db


def current_account() -> Account | None:
    if not current_user.is_authenticated:
        return None
    account: Account = current_user.account
    return account


def require_brand_space() -> None:
    """Before each request: 404 unless an admin or a brand operator is signed in."""
    if not service.may_use_brand_space(current_account()):
        abort(404)


def brand_or_404(slug: str) -> Brand:
    account = current_account()
    brand = service.brand_for(db.session, account, slug) if account is not None else None
    if brand is None:
        abort(404)
    return brand


def actor() -> Account:
    account = current_account()
    assert account is not None  # require_brand_space ran
    return account


#: What a second submit of a form says, by the action its first submit did.
def _duplicate_message(action: str) -> str:
    messages = {
        "api_client.created": _(
            "This form was already sent: the client below was created then. Its secret was "
            "shown only once; if nobody stored it, rotate the secret."
        ),
        "api_client.secret_rotated": _(
            "This form was already sent: the secret was rotated then, and the new secret "
            "was shown only once. If nobody stored it, rotate the secret again."
        ),
        "api_client.revoked": _("This form was already sent: the client is revoked."),
        "webhook.created": _(
            "This form was already sent: the endpoint below was added then. Its signing "
            "secret was shown only once; if nobody stored it, rotate the secret."
        ),
        "webhook.secret_rotated": _(
            "This form was already sent: the signing secret was rotated then, and the new "
            "secret was shown only once. If nobody stored it, rotate the secret again."
        ),
        "webhook.disabled": _("This form was already sent: the endpoint is disabled."),
        "webhook.pinged": _("This form was already sent: the ping below was sent then."),
        "webhook.redelivered": _("This form was already sent: the delivery was queued again then."),
    }
    return str(messages.get(action, _("This form was already sent; nothing was done again.")))


def duplicate_response(brand: Brand, submission: FormSubmission) -> Response:
    """Where a second submit lands: the object the first one acted on, with a message."""
    flash(_duplicate_message(submission.action), "info")
    kind = submission.action.split(".", 1)[0]
    if kind == "api_client" and submission.object_id:
        target = url_for("brand_space.client", slug=brand.slug, client_id=submission.object_id)
    elif kind == "webhook" and submission.object_id.isdigit():
        target = url_for(
            "brand_space.endpoint", slug=brand.slug, endpoint_id=int(submission.object_id)
        )
    elif kind == "webhook":
        target = url_for("brand_space.endpoints", slug=brand.slug)
    else:
        target = url_for("brand_space.clients", slug=brand.slug)
    return redirect(target, 303)
