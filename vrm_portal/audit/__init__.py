"""The staff audit trail: an append-only record of what staff members did.

Every action of the administration and privacy-office consoles is recorded here (who,
when, what, on which object, the values before and after, never a secret). The table
refuses UPDATE and DELETE, like the consent ledger.
"""
