"""The brand space blueprint with all its routes: register ``bp``."""

from vrm_portal.brand_space import client_views, webhook_views
from vrm_portal.brand_space.blueprint import bp

__all__ = ["bp", "client_views", "webhook_views"]
