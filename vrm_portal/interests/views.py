"""Interests and intents pages (filled in by the interests feature)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("interests", __name__)
