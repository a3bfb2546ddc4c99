"""The privacy office console: consent log search, statistics, verification, request queue."""
