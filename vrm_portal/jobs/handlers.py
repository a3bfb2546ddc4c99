"""Imports every module that registers job handlers, so a worker knows every kind."""

from vrm_portal import mail
from vrm_portal.accounts import jobs as accounts_jobs
from vrm_portal.jobs import diagnostics, schedules

__all__ = ["accounts_jobs", "diagnostics", "mail", "schedules"]
