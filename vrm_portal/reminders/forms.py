"""The form of the attention-email setting."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField


class AttentionEmailsForm(FlaskForm):  # type: ignore[misc]
    attention_emails = BooleanField(
        _l("Tell me by email when a consent needs my attention"),
        description=_l(
            "At most one email a day, only when a consent needs renewing or expires soon. "
            "No offers and no news from brands."
        ),
    )
