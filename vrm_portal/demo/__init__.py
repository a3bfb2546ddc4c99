"""Demo data for ``make run``: a fictional brand group and a consumer with a history."""
