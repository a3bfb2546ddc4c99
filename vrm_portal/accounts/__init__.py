"""Accounts: consumers and staff, passwords, email verification, sessions."""
