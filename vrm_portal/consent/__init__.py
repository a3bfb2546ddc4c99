"""Consent: purposes with versioned texts, the hash-chained ledger, current state, receipts."""
