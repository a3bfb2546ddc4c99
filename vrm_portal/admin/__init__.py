"""The administration console (``/admin/``): the catalogue and its text versions under
four-eyes review, the staff, failed jobs, and the staff audit trail."""

from __future__ import annotations

from flask import Flask

from vrm_portal.extensions import csrf


def init_app(app: Flask) -> None:
    """Register the console and the staff-invitation page."""
    # The view modules add their routes to the blueprint when imported.
    from vrm_portal.admin import (  # noqa: F401
        catalogue_views,
        draft_views,
        invitation_views,
        ops_views,
        staff_views,
    )
    from vrm_portal.admin.blueprint import bp

    # The console checks CSRF itself, after admitting the visitor (``blueprint.admit``).
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(invitation_views.bp)
