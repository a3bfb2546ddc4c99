"""Forms of the social sign-in pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length


class ProveWithPasswordForm(FlaskForm):  # type: ignore[misc]
    """The existing account's owner proves it is theirs with its password."""

    password = PasswordField(
        _l("Password of your existing account"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=1024)],
    )
