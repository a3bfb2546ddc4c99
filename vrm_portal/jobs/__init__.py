"""Background work on a job engine (Huey): email off the request path, schedules instead
of cron, and long batches with progress. See ``service.py`` for the invariants."""
