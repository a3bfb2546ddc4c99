"""Imports every feature's models so ``Base.metadata`` describes the whole schema."""

from vrm_portal.accounts import models as accounts_models
from vrm_portal.accounts.passkeys import models as passkeys_models
from vrm_portal.accounts.social import models as social_models
from vrm_portal.admin import models as admin_models
from vrm_portal.audit import models as audit_models
from vrm_portal.brand_space import models as brand_space_models
from vrm_portal.brands import models as brands_models
from vrm_portal.consent import models as consent_models
from vrm_portal.db import Base
from vrm_portal.history import models as history_models
from vrm_portal.interests import models as interests_models
from vrm_portal.jobs import models as jobs_models
from vrm_portal.log import models as log_models
from vrm_portal.privacy_office import models as privacy_office_models
from vrm_portal.reminders import models as reminders_models
from vrm_portal.requests import models as requests_models
from vrm_portal.webhooks import models as webhooks_models

__all__ = [
    "Base",
    "accounts_models",
    "admin_models",
    "audit_models",
    "brand_space_models",
    "brands_models",
    "consent_models",
    "history_models",
    "interests_models",
    "jobs_models",
    "log_models",
    "passkeys_models",
    "privacy_office_models",
    "reminders_models",
    "requests_models",
    "social_models",
    "webhooks_models",
]
