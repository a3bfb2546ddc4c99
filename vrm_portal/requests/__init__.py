"""Data-subject requests (GDPR art. 15, 17 and 20): export and erasure, tracked with dates."""
