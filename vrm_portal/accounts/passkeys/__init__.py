"""Passkeys (WebAuthn): registration, sign-in, second step and the management pages."""
