"""Imports every feature's models so ``Base.metadata`` describes the whole schema."""

from vrm_portal.accounts import models as accounts_models
from vrm_portal.accounts.social import models as social_models
from vrm_portal.db import Base

__all__ = ["Base", "accounts_models", "social_models"]
