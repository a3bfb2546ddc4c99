"""Imports every module that registers job handlers, so a worker knows every kind."""

from vrm_portal import mail
from vrm_portal.accounts import jobs as accounts_jobs
from vrm_portal.admin import jobs as admin_jobs  # noqa: F401  (admin.staff_invitation)
from vrm_portal.consent import renewal  # noqa: F401  (consent.renewal_notices)
from vrm_portal.jobs import diagnostics, schedules
from vrm_portal.log import jobs as log_jobs  # noqa: F401  (schedule.checkpoint)
from vrm_portal.privacy_office import verification  # noqa: F401  (schedule.verify_ledger)
from vrm_portal.reminders import jobs as reminders_jobs  # noqa: F401  (schedule.reminders)

__all__ = ["accounts_jobs", "diagnostics", "mail", "schedules"]
