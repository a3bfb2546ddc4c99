"""Everything the portal holds about one consumer, section by section (GDPR art. 15 and 20).

One builder feeds the three formats of ``requests.export_formats`` (JSON, a ZIP of CSV
files, a printable page), so they always hold the same data. Each section is a name,
its column names and an iterator of plain ``dict`` rows read with a streaming query
(``yield_per``: a server-side cursor on PostgreSQL, a stepped cursor on SQLite), issued
only when the section is read: a consumer with 100,000 history entries is exported with
flat memory. Read the sections in order, each to its end, inside one transaction started
with ``begin_snapshot`` so that they agree with each other.

Nothing secret leaves: no password hash, second-factor secret, recovery code, passkey key,
provider token or session token; not the pseudonymous ledger ``subject_key`` either.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Engine, Integer, Select, and_, func, literal_column, select
from sqlalchemy.orm import Session

from vrm_portal.accounts.models import Account, AccountEvent
from vrm_portal.accounts.passkeys.models import Passkey
from vrm_portal.accounts.social.models import LinkedIdentity
from vrm_portal.brands.models import ApiClient, Brand
from vrm_portal.clock import rfc3339
from vrm_portal.consent.ledger import document_of
from vrm_portal.consent.models import (
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    Purpose,
    PurposeVersion,
)
from vrm_portal.db import READ_ONLY
from vrm_portal.history.coverage import covered_record_ids
from vrm_portal.history.models import AccessRecord, Interaction
from vrm_portal.interests.models import DeclaredInterest, Intent, IntentBrand, Topic
from vrm_portal.requests.models import DataRequest

#: Rows fetched from the database at a time.
BATCH = 500

AnySelect = Select[*tuple[Any, ...]]

PROFILE_COLUMNS = (
    "email",
    "given_name",
    "family_name",
    "phone",
    "postal_address",
    "locale",
    "time_zone",
    "attention_emails",
    "created_at",
    "email_verified_at",
)
LINKED_IDENTITY_COLUMNS = ("provider", "subject", "email_seen", "created_at", "last_used_at")
#: The passkeys' names and dates; never their keys (public, and of no use to anyone else).
PASSKEY_COLUMNS = ("name", "created_at", "last_used_at")
CONSENT_COLUMNS = (
    "brand",
    "purpose",
    "title",
    "status",
    "version",
    "granted_at",
    "expires_at",
    "method",
    "updated_at",
)
CONSENT_HISTORY_COLUMNS = (
    "seq",
    "event_id",
    "brand",
    "purpose",
    "purpose_version",
    "text_hash",
    "action",
    "method",
    "actor",
    "language",
    "occurred_at",
    "expires_at",
    "prev_hash",
    "hash",
    "receipt_id",
    "receipt_jws",
)
INTEREST_COLUMNS = ("brand", "topic", "label", "created_at")
INTENT_COLUMNS = (
    "category",
    "summary",
    "horizon_months",
    "budget_min",
    "budget_max",
    "currency",
    "ends_on",
    "created_at",
    "withdrawn_at",
    "brands",
)
INTERACTION_COLUMNS = (
    "interaction_id",
    "brand",
    "type",
    "occurred_at",
    "recorded_at",
    "summary",
    "body",
)
ACCESS_COLUMNS = ("brand", "client_id", "at", "kind", "scope", "fields")
DATA_REQUEST_COLUMNS = (
    "reference",
    "kind",
    "status",
    "format",
    "requested_at",
    "due_at",
    "completed_at",
    "cancelled_at",
)
ACTIVITY_COLUMNS = ("kind", "created_at", "ip_address", "user_agent", "detail")

#: The sections in export order, with their columns (the JSON Schema and the CSV headers).
SECTIONS: dict[str, tuple[str, ...]] = {
    "profile": PROFILE_COLUMNS,
    "linked_identities": LINKED_IDENTITY_COLUMNS,
    "passkeys": PASSKEY_COLUMNS,
    "consents": CONSENT_COLUMNS,
    "consent_history": CONSENT_HISTORY_COLUMNS,
    "interests": INTEREST_COLUMNS,
    "intents": INTENT_COLUMNS,
    "interactions": INTERACTION_COLUMNS,
    "access_log": ACCESS_COLUMNS,
    "data_requests": DATA_REQUEST_COLUMNS,
    "account_activity": ACTIVITY_COLUMNS,
}


@dataclass(frozen=True)
class Section:
    """One part of the export: ``rows`` is read lazily, once."""

    name: str
    columns: tuple[str, ...]
    rows: Iterator[dict[str, Any]]
    #: The profile is one object, not a list.
    single: bool = False


@dataclass(frozen=True)
class Export:
    """What the formats write: when it was made, in which language, and the sections."""

    generated_at: datetime
    locale: str
    sections: Iterator[Section]


def begin_snapshot(session: Session) -> None:
    """Start ``session``'s transaction as a consistent read that never blocks writers.

    On SQLite a plain ``BEGIN`` (``READ_ONLY``) instead of ``BEGIN IMMEDIATE``: under WAL
    the reader sees one snapshot and writers go on. On PostgreSQL a read-only
    ``REPEATABLE READ`` transaction: every section sees the same snapshot. Call it before
    the session is used in the transaction; a session bound to an open connection (the
    tests' rolled-back transaction) keeps that connection's isolation level.
    """
    options: dict[str, Any] = dict(READ_ONLY)
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    session.connection(execution_options=options)


def build_export(session: Session, account: Account, now: datetime, locale: str) -> Export:
    """The consumer's data as lazy sections; ``locale`` picks labels (topics, purposes)."""
    return Export(generated_at=now, locale=locale, sections=_sections(session, account, locale))


def _sections(session: Session, account: Account, locale: str) -> Iterator[Section]:
    yield Section("profile", PROFILE_COLUMNS, _profile(session, account), single=True)
    yield Section("linked_identities", LINKED_IDENTITY_COLUMNS, _identities(session, account))
    yield Section("passkeys", PASSKEY_COLUMNS, _passkeys(session, account))
    yield Section("consents", CONSENT_COLUMNS, _consents(session, account, locale))
    yield Section("consent_history", CONSENT_HISTORY_COLUMNS, _history(session, account))
    yield Section("interests", INTEREST_COLUMNS, _interests(session, account, locale))
    yield Section("intents", INTENT_COLUMNS, _intents(session, account))
    yield Section("interactions", INTERACTION_COLUMNS, _interactions(session, account))
    yield Section("access_log", ACCESS_COLUMNS, _access_log(session, account))
    yield Section("data_requests", DATA_REQUEST_COLUMNS, _data_requests(session, account))
    yield Section("account_activity", ACTIVITY_COLUMNS, _activity(session, account))


def section_counts(session: Session, account: Account) -> dict[str, int]:
    """How many rows each section holds (one COUNT each), for the export page."""
    counts = {"profile": 1}
    for name, query in _count_queries(account).items():
        counts[name] = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return {name: counts[name] for name in SECTIONS}


def _count_queries(account: Account) -> dict[str, AnySelect]:
    one = literal_column("1", Integer)
    return {
        "linked_identities": select(one).where(LinkedIdentity.account_id == account.id),
        "passkeys": select(one).where(Passkey.account_id == account.id),
        "consents": select(one).where(ConsentState.account_id == account.id),
        "consent_history": select(one).where(ConsentEvent.subject_key == account.subject_key),
        "interests": select(one).where(DeclaredInterest.account_id == account.id),
        "intents": select(one).where(Intent.account_id == account.id),
        "interactions": select(one).where(Interaction.account_id == account.id),
        "access_log": covered_record_ids(account.id),
        "data_requests": select(one).where(DataRequest.account_id == account.id),
        "account_activity": select(one).where(AccountEvent.account_id == account.id),
    }


def _stream(session: Session, statement: AnySelect) -> Iterator[Any]:
    """The statement's rows, fetched ``BATCH`` at a time; the cursor closes with the loop."""
    result = session.execute(statement.execution_options(yield_per=BATCH))
    try:
        yield from result
    finally:
        result.close()


def _time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def _day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _profile(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = select(
        Account.email,
        Account.given_name,
        Account.family_name,
        Account.phone,
        Account.postal_address,
        Account.locale,
        Account.time_zone,
        Account.attention_emails,
        Account.created_at,
        Account.email_verified_at,
    ).where(Account.id == account.id)
    for row in _stream(session, statement):
        yield {
            "email": row.email,
            "given_name": row.given_name,
            "family_name": row.family_name,
            "phone": row.phone,
            "postal_address": row.postal_address,
            "locale": row.locale,
            "time_zone": row.time_zone,
            "attention_emails": bool(row.attention_emails),
            "created_at": rfc3339(row.created_at),
            "email_verified_at": _time(row.email_verified_at),
        }


def _identities(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(
            LinkedIdentity.provider,
            LinkedIdentity.subject,
            LinkedIdentity.email_seen,
            LinkedIdentity.created_at,
            LinkedIdentity.last_used_at,
        )
        .where(LinkedIdentity.account_id == account.id)
        .order_by(LinkedIdentity.id)
    )
    for row in _stream(session, statement):
        yield {
            "provider": row.provider,
            "subject": row.subject,
            "email_seen": row.email_seen,
            "created_at": rfc3339(row.created_at),
            "last_used_at": _time(row.last_used_at),
        }


def _passkeys(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(Passkey.name, Passkey.created_at, Passkey.last_used_at)
        .where(Passkey.account_id == account.id)
        .order_by(Passkey.id)
    )
    for row in _stream(session, statement):
        yield {
            "name": row.name,
            "created_at": rfc3339(row.created_at),
            "last_used_at": _time(row.last_used_at),
        }


def _consents(session: Session, account: Account, locale: str) -> Iterator[dict[str, Any]]:
    title = PurposeVersion.title_fr if locale == "fr" else PurposeVersion.title_en
    statement = (
        select(
            Brand.slug,
            Purpose.key,
            title.label("title"),
            ConsentState.status,
            ConsentState.version,
            ConsentState.granted_at,
            ConsentState.expires_at,
            ConsentState.method,
            ConsentState.updated_at,
        )
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .join(Brand, Brand.id == Purpose.brand_id)
        .outerjoin(
            PurposeVersion,
            and_(
                PurposeVersion.purpose_id == Purpose.id,
                PurposeVersion.version == ConsentState.version,
            ),
        )
        .where(ConsentState.account_id == account.id)
        .order_by(Brand.slug, Purpose.position, Purpose.id)
    )
    for row in _stream(session, statement):
        yield {
            "brand": row.slug,
            "purpose": row.key,
            "title": row.title,
            "status": row.status,
            "version": row.version,
            "granted_at": _time(row.granted_at),
            "expires_at": _time(row.expires_at),
            "method": row.method,
            "updated_at": rfc3339(row.updated_at),
        }


def _history(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(ConsentEvent, ConsentReceipt.receipt_id, ConsentReceipt.jws)
        .outerjoin(ConsentReceipt, ConsentReceipt.event_seq == ConsentEvent.seq)
        .where(ConsentEvent.subject_key == account.subject_key)
        .order_by(ConsentEvent.seq)
    )
    for event, receipt_id, jws in _stream(session, statement):
        document = document_of(event)
        yield {
            "seq": event.seq,
            "event_id": event.event_id,
            "brand": document["brand"],
            "purpose": document["purpose"],
            "purpose_version": document["purpose_version"],
            "text_hash": document["text_hash"],
            "action": document["action"],
            "method": document["method"],
            "actor": document["actor"],
            "language": document["language"],
            "occurred_at": document["occurred_at"],
            "expires_at": document["expires_at"],
            "prev_hash": document["prev_hash"],
            "hash": event.hash.hex(),
            "receipt_id": receipt_id,
            "receipt_jws": jws,
        }


def _interests(session: Session, account: Account, locale: str) -> Iterator[dict[str, Any]]:
    label = Topic.label_fr if locale == "fr" else Topic.label_en
    statement = (
        select(Brand.slug, Topic.key, label.label("label"), DeclaredInterest.created_at)
        .join(Topic, Topic.id == DeclaredInterest.topic_id)
        .join(Brand, Brand.id == Topic.brand_id)
        .where(DeclaredInterest.account_id == account.id)
        .order_by(Brand.slug, Topic.position, Topic.id)
    )
    for row in _stream(session, statement):
        yield {
            "brand": row.slug,
            "topic": row.key,
            "label": row.label,
            "created_at": rfc3339(row.created_at),
        }


def _intents(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    """One row per intent with the brands it is shown to (rows grouped as they stream)."""
    statement = (
        select(
            Intent.id,
            Intent.category,
            Intent.summary,
            Intent.horizon_months,
            Intent.budget_min,
            Intent.budget_max,
            Intent.currency,
            Intent.ends_on,
            Intent.created_at,
            Intent.withdrawn_at,
            Brand.slug,
        )
        .outerjoin(IntentBrand, IntentBrand.intent_id == Intent.id)
        .outerjoin(Brand, Brand.id == IntentBrand.brand_id)
        .where(Intent.account_id == account.id)
        .order_by(Intent.id, Brand.slug)
    )
    for _id, group in itertools.groupby(_stream(session, statement), key=attrgetter("id")):
        rows = list(group)
        first = rows[0]
        yield {
            "category": first.category,
            "summary": first.summary,
            "horizon_months": first.horizon_months,
            "budget_min": first.budget_min,
            "budget_max": first.budget_max,
            "currency": first.currency,
            "ends_on": _day(first.ends_on),
            "created_at": rfc3339(first.created_at),
            "withdrawn_at": _time(first.withdrawn_at),
            "brands": [row.slug for row in rows if row.slug is not None],
        }


def _interactions(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(
            Interaction.interaction_id,
            Brand.slug,
            Interaction.type,
            Interaction.occurred_at,
            Interaction.recorded_at,
            Interaction.summary,
            Interaction.body,
        )
        .join(Brand, Brand.id == Interaction.brand_id)
        .where(Interaction.account_id == account.id)
        .order_by(Interaction.occurred_at, Interaction.id)
    )
    for row in _stream(session, statement):
        yield {
            "interaction_id": row.interaction_id,
            "brand": row.slug,
            "type": row.type,
            "occurred_at": rfc3339(row.occurred_at),
            "recorded_at": rfc3339(row.recorded_at),
            "summary": row.summary,
            "body": row.body,
        }


def _access_log(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    covered = covered_record_ids(account.id).subquery("covered_ids")
    statement = (
        select(
            Brand.slug,
            ApiClient.client_id,
            AccessRecord.at,
            AccessRecord.kind,
            AccessRecord.scope,
            AccessRecord.fields,
        )
        .join(covered, covered.c.id == AccessRecord.id)
        .join(Brand, Brand.id == AccessRecord.brand_id)
        .outerjoin(ApiClient, ApiClient.id == AccessRecord.client_pk)
        .order_by(AccessRecord.at, AccessRecord.id)
    )
    for row in _stream(session, statement):
        yield {
            "brand": row.slug,
            "client_id": row.client_id,
            "at": rfc3339(row.at),
            "kind": row.kind,
            "scope": row.scope,
            "fields": list(row.fields or []),
        }


def _data_requests(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(
            DataRequest.reference,
            DataRequest.kind,
            DataRequest.status,
            DataRequest.format,
            DataRequest.requested_at,
            DataRequest.due_at,
            DataRequest.completed_at,
            DataRequest.cancelled_at,
        )
        .where(DataRequest.account_id == account.id)
        .order_by(DataRequest.id)
    )
    for row in _stream(session, statement):
        yield {
            "reference": row.reference,
            "kind": row.kind,
            "status": row.status,
            "format": row.format,
            "requested_at": rfc3339(row.requested_at),
            "due_at": _time(row.due_at),
            "completed_at": _time(row.completed_at),
            "cancelled_at": _time(row.cancelled_at),
        }


def _activity(session: Session, account: Account) -> Iterator[dict[str, Any]]:
    statement = (
        select(
            AccountEvent.kind,
            AccountEvent.created_at,
            AccountEvent.ip_address,
            AccountEvent.user_agent,
            AccountEvent.detail,
        )
        .where(AccountEvent.account_id == account.id)
        .order_by(AccountEvent.id)
    )
    for row in _stream(session, statement):
        yield {
            "kind": row.kind,
            "created_at": rfc3339(row.created_at),
            "ip_address": row.ip_address,
            "user_agent": row.user_agent,
            "detail": row.detail or {},
        }
