"""The brand space's blueprint, behind its gate (see ``access.require_brand_space``)."""

from __future__ import annotations

from flask import Blueprint

from vrm_portal.brand_space.access import require_brand_space
from vrm_portal.extensions import csrf

bp = Blueprint("brand_space", __name__, url_prefix="/brand-space")
# The gate answers first, so an outsider's POST gets the same 404 as a GET; each POST
# still checks its CSRF token through its FlaskForm.
csrf.exempt(bp)
bp.before_request(require_brand_space)
