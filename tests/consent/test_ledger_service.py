"""The consent service and the ledger it writes: state, chain, receipts, renewals."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.consent.conftest import events_of, new_text, purpose_of
from vrm_portal.clock import utcnow
from vrm_portal.consent import ledger, queries, service
from vrm_portal.consent.catalogue import publish_version
from vrm_portal.consent.errors import ConfirmationInvalid, ConsentVersionOutdated
from vrm_portal.consent.models import (
    CollectionMethod,
    ConsentEvent,
    ConsentReceipt,
    ConsentState,
    ConsentStatus,
)
from vrm_portal.consent.queries import Standing
from vrm_portal.consent.service import Change, Outcome

pytestmark = pytest.mark.usefixtures("catalogue")


def state_of(db_session, account, purpose):
    return db_session.scalar(
        select(ConsentState)
        .where(ConsentState.account_id == account.id, ConsentState.purpose_id == purpose.id)
        .execution_options(populate_existing=True)
    )


def standing(db_session, account, purpose, now=None):
    return queries.standing_of(state_of(db_session, account, purpose), purpose, now or utcnow())


def test_grant_then_withdraw_appends_two_chained_events(
    db_session, make_account, notary, change, connection
):
    alice = make_account()
    purpose = service.find_purpose(db_session, "maison-berlingot", "personalised-offers")
    granted = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    withdrawn = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert granted.outcome is service.Outcome.RECORDED
    assert withdrawn.outcome is service.Outcome.RECORDED
    events = db_session.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)).all()
    assert [e.action for e in events[-2:]] == ["granted", "withdrawn"]
    first, second = (ledger.document_of(e) for e in events[-2:])
    assert second["prev_hash"] == events[-2].hash.hex()
    assert first["subject"] == alice.subject_key
    assert "alice" not in events[-1].body
    assert ledger.verify(connection).ok


# ---- state transitions ----------------------------------------------------------------


def test_standing_follows_grant_and_withdraw(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "sms-offers")
    assert standing(db_session, alice, purpose) is Standing.NOT_GIVEN

    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()
    assert result.outcome is Outcome.RECORDED
    assert result.receipt is not None
    state = state_of(db_session, alice, purpose)
    assert state.status == ConsentStatus.GRANTED
    assert state.method == "portal"
    assert state.expires_at == state.granted_at + timedelta(days=purpose.validity_days)
    assert service.is_active(state, purpose, utcnow())
    assert standing(db_session, alice, purpose) is Standing.GRANTED

    result = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert result.outcome is Outcome.RECORDED
    state = state_of(db_session, alice, purpose)
    assert state.status == ConsentStatus.WITHDRAWN
    assert state.granted_at is None
    assert state.expires_at is None
    assert not service.is_active(state, purpose, utcnow())
    assert standing(db_session, alice, purpose) is Standing.WITHDRAWN

    # Given again after withdrawing: active again, three events in all.
    again = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()
    assert again.outcome is Outcome.RECORDED
    assert standing(db_session, alice, purpose) is Standing.GRANTED
    events = events_of(db_session, alice)
    assert [e.action for e in events] == ["granted", "withdrawn", "granted"]
    assert state_of(db_session, alice, purpose).last_event_seq == events[-1].seq


def test_granting_twice_records_one_event(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "aurore-automobiles", "postal-offers")
    first = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    second = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()
    assert first.outcome is Outcome.RECORDED
    assert second.outcome is Outcome.UNCHANGED
    assert second.receipt is None
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]
    assert db_session.scalar(select(func.count()).select_from(ConsentReceipt)) == 1


def test_withdrawing_what_was_never_given_records_nothing(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "analytics")
    result = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert result.outcome is Outcome.UNCHANGED
    assert events_of(db_session, alice) == []
    assert state_of(db_session, alice, purpose) is None

    # Withdrawing twice: the second one changes nothing either.
    service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    service.withdraw(db_session, notary, alice, purpose, change=change())
    twice = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert twice.outcome is Outcome.UNCHANGED
    assert [e.action for e in events_of(db_session, alice)] == ["granted", "withdrawn"]


def test_consents_are_per_brand_and_per_purpose(db_session, make_account, notary, change):
    alice = make_account()
    bob = make_account("bob@example.com")
    maison = purpose_of(db_session, "maison-berlingot", "sms-offers")
    aurore = purpose_of(db_session, "aurore-automobiles", "sms-offers")
    service.grant(db_session, notary, alice, maison, shown_version=1, change=change())
    db_session.commit()
    assert standing(db_session, alice, maison) is Standing.GRANTED
    assert standing(db_session, alice, aurore) is Standing.NOT_GIVEN
    assert standing(db_session, bob, maison) is Standing.NOT_GIVEN
    assert events_of(db_session, bob) == []


# ---- versions and expiry ----------------------------------------------------------------


def test_a_new_text_version_asks_for_renewal(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()

    v2 = publish_version(db_session, purpose, new_text())
    db_session.commit()
    assert v2 is not None
    assert v2.version == 2
    assert purpose.current_version == 2
    state = state_of(db_session, alice, purpose)
    assert state.version == 1
    assert not service.is_active(state, purpose, utcnow())
    assert standing(db_session, alice, purpose) is Standing.NEEDS_RENEWAL

    # A form that still showed version 1 agrees to nothing.
    before = len(events_of(db_session))
    with pytest.raises(ConsentVersionOutdated) as refused:
        service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    assert (refused.value.shown, refused.value.current) == (1, 2)
    db_session.commit()
    assert len(events_of(db_session)) == before
    assert state_of(db_session, alice, purpose).version == 1

    # Agreeing to version 2 renews it, with the new text's hash in the ledger.
    renewed = service.grant(db_session, notary, alice, purpose, shown_version=2, change=change())
    db_session.commit()
    assert renewed.outcome is Outcome.RECORDED
    state = state_of(db_session, alice, purpose)
    assert state.version == 2
    assert state.content_hash == v2.content_hash
    assert service.is_active(state, purpose, utcnow())
    assert standing(db_session, alice, purpose) is Standing.GRANTED
    document = ledger.document_of(events_of(db_session, alice)[-1])
    assert document["purpose_version"] == 2
    assert document["text_hash"] == v2.content_hash


def test_publishing_the_same_text_again_keeps_the_version(db_session, notary):
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    assert publish_version(db_session, purpose, new_text()) is not None
    assert publish_version(db_session, purpose, new_text()) is None
    assert purpose.current_version == 2


def test_withdrawing_an_outdated_grant_records_the_version_agreed_to(
    db_session, make_account, notary, change
):
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    v1_hash = service.version_of(db_session, purpose).content_hash
    service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    publish_version(db_session, purpose, new_text())
    result = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert result.outcome is Outcome.RECORDED
    document = ledger.document_of(events_of(db_session, alice)[-1])
    assert document["action"] == "withdrawn"
    assert document["purpose_version"] == 1
    assert document["text_hash"] == v1_hash
    assert standing(db_session, alice, purpose) is Standing.WITHDRAWN


def test_a_grant_past_its_validity_is_expired_and_expire_due_records_it_once(
    db_session, make_account, notary, change, connection
):
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "sms-offers")  # 365 days
    fresh = purpose_of(db_session, "maison-berlingot", "analytics")
    long_ago = utcnow() - timedelta(days=purpose.validity_days + 10)
    service.grant(db_session, notary, alice, purpose, shown_version=1, change=change(now=long_ago))
    service.grant(db_session, notary, alice, fresh, shown_version=1, change=change())
    db_session.commit()
    now = utcnow()
    assert standing(db_session, alice, purpose, now) is Standing.EXPIRED
    assert not service.is_active(state_of(db_session, alice, purpose), purpose, now)
    assert standing(db_session, alice, fresh, now) is Standing.GRANTED

    assert service.expire_due(db_session, notary, now=now) == 1
    db_session.commit()
    last = events_of(db_session, alice)[-1]
    document = ledger.document_of(last)
    assert last.action == "expired"
    assert (document["action"], document["actor"], document["method"]) == (
        "expired",
        "system",
        "expiry",
    )
    assert document["purpose"] == "sms-offers"
    assert state_of(db_session, alice, purpose).status == ConsentStatus.EXPIRED
    assert standing(db_session, alice, purpose, now) is Standing.EXPIRED
    assert standing(db_session, alice, fresh, now) is Standing.GRANTED

    # Running it again finds nothing more to do.
    count = len(events_of(db_session))
    assert service.expire_due(db_session, notary, now=now) == 0
    db_session.commit()
    assert len(events_of(db_session)) == count
    assert ledger.verify(connection).ok

    # An expired consent can be given again.
    again = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    assert again.outcome is Outcome.RECORDED
    assert standing(db_session, alice, purpose) is Standing.GRANTED


# ---- double opt-in ----------------------------------------------------------------------


def test_an_email_purpose_is_recorded_only_once_confirmed(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    db_session.commit()
    assert result.outcome is Outcome.CONFIRMATION_SENT
    assert result.confirmation_token
    assert result.receipt is None
    assert events_of(db_session, alice) == []
    assert standing(db_session, alice, purpose) is Standing.PENDING
    assert not service.is_active(state_of(db_session, alice, purpose), purpose, utcnow())

    receipt = service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    db_session.commit()
    [event] = events_of(db_session, alice)
    document = ledger.document_of(event)
    assert (document["action"], document["method"]) == ("granted", "email-confirmation")
    assert receipt.event_seq == event.seq
    assert standing(db_session, alice, purpose) is Standing.GRANTED

    with pytest.raises(ConfirmationInvalid) as reused:
        service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    assert reused.value.reason == "used"
    assert len(events_of(db_session, alice)) == 1


def test_a_second_grant_while_pending_sends_a_new_link_and_voids_the_first(
    db_session, make_account, notary, change
):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    first = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    second = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    assert second.outcome is Outcome.CONFIRMATION_SENT
    assert second.confirmation_token != first.confirmation_token
    with pytest.raises(ConfirmationInvalid) as old:
        service.confirm(db_session, notary, first.confirmation_token, alice, change=change())
    assert old.value.reason == "used"
    service.confirm(db_session, notary, second.confirmation_token, alice, change=change())
    assert [e.action for e in events_of(db_session, alice)] == ["granted"]


def test_an_expired_confirmation_link_records_nothing(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(
        db_session,
        notary,
        alice,
        purpose,
        shown_version=1,
        change=change(),
        confirmation_ttl=timedelta(hours=1),
    )
    later = change(now=utcnow() + timedelta(hours=1, minutes=1))
    with pytest.raises(ConfirmationInvalid) as expired:
        service.confirm(db_session, notary, result.confirmation_token, alice, change=later)
    assert expired.value.reason == "expired"
    assert events_of(db_session, alice) == []


def test_a_link_for_an_outdated_text_records_nothing(db_session, make_account, notary, change):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    publish_version(db_session, purpose, new_text())
    with pytest.raises(ConfirmationInvalid) as outdated:
        service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    assert outdated.value.reason == "outdated"
    assert events_of(db_session, alice) == []


def test_only_the_account_that_asked_can_confirm(db_session, make_account, notary, change):
    alice = make_account()
    mallory = make_account("mallory@example.com")
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    for token, account in ((result.confirmation_token, mallory), ("not-a-token", alice)):
        with pytest.raises(ConfirmationInvalid) as invalid:
            service.confirm(db_session, notary, token, account, change=change())
        assert invalid.value.reason == "invalid"
    assert events_of(db_session) == []
    # Alice's link still works for Alice.
    service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    assert len(events_of(db_session, alice)) == 1


def test_withdrawing_while_pending_cancels_and_records_nothing(
    db_session, make_account, notary, change
):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    cancelled = service.withdraw(db_session, notary, alice, purpose, change=change())
    db_session.commit()
    assert cancelled.outcome is Outcome.PENDING_CANCELLED
    assert cancelled.receipt is None
    assert events_of(db_session, alice) == []
    assert standing(db_session, alice, purpose) is not Standing.PENDING
    with pytest.raises(ConfirmationInvalid) as used:
        service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    assert used.value.reason == "used"
    assert events_of(db_session, alice) == []


def test_renewing_a_confirmed_email_purpose_needs_no_new_link(
    db_session, make_account, notary, change
):
    alice = make_account()
    purpose = purpose_of(db_session, "domaine-des-coteaux", "email-offers")
    result = service.grant(db_session, notary, alice, purpose, shown_version=1, change=change())
    service.confirm(db_session, notary, result.confirmation_token, alice, change=change())
    publish_version(db_session, purpose, new_text())
    renewed = service.grant(db_session, notary, alice, purpose, shown_version=2, change=change())
    assert renewed.outcome is Outcome.RECORDED
    assert standing(db_session, alice, purpose) is Standing.GRANTED


# ---- Global Privacy Control ---------------------------------------------------------------


def test_gpc_withdraws_only_third_party_sharing(db_session, make_account, notary, change):
    alice = make_account()
    sharing = purpose_of(db_session, "maison-berlingot", "partner-sharing")
    analytics = purpose_of(db_session, "maison-berlingot", "analytics")
    chosen_with_signal = purpose_of(db_session, "aurore-automobiles", "partner-sharing")
    assert sharing.shares_with_third_parties
    assert not analytics.shares_with_third_parties
    service.grant(db_session, notary, alice, sharing, shown_version=1, change=change())
    service.grant(db_session, notary, alice, analytics, shown_version=1, change=change())
    service.grant(
        db_session,
        notary,
        alice,
        chosen_with_signal,
        shown_version=1,
        change=change(gpc_signal=True),
    )
    db_session.commit()
    before = len(events_of(db_session, alice))

    withdrawn = service.honour_gpc(
        db_session,
        notary,
        alice,
        change=change(CollectionMethod.GPC_SIGNAL, gpc_signal=True),
    )
    db_session.commit()
    assert [(p.brand.slug, p.key) for p in withdrawn] == [("maison-berlingot", "partner-sharing")]
    events = events_of(db_session, alice)
    assert len(events) == before + 1
    document = ledger.document_of(events[-1])
    assert (document["brand"], document["purpose"]) == ("maison-berlingot", "partner-sharing")
    assert (document["action"], document["method"]) == ("withdrawn", "gpc-signal")
    assert standing(db_session, alice, sharing) is Standing.WITHDRAWN
    assert standing(db_session, alice, analytics) is Standing.GRANTED
    assert standing(db_session, alice, chosen_with_signal) is Standing.GRANTED

    # The next request with the signal finds nothing left to withdraw.
    again = service.honour_gpc(
        db_session, notary, alice, change=change(CollectionMethod.GPC_SIGNAL, gpc_signal=True)
    )
    assert again == []
    assert len(events_of(db_session, alice)) == before + 1


def test_gpc_touches_only_the_signalling_consumer(db_session, make_account, notary, change):
    alice = make_account()
    bob = make_account("bob@example.com")
    sharing = purpose_of(db_session, "maison-berlingot", "partner-sharing")
    service.grant(db_session, notary, alice, sharing, shown_version=1, change=change())
    service.grant(db_session, notary, bob, sharing, shown_version=1, change=change())
    service.honour_gpc(
        db_session, notary, alice, change=change(CollectionMethod.GPC_SIGNAL, gpc_signal=True)
    )
    assert standing(db_session, alice, sharing) is Standing.WITHDRAWN
    assert standing(db_session, bob, sharing) is Standing.GRANTED


# ---- the ledger's documents ---------------------------------------------------------------


def test_ledger_documents_are_canonical_chained_and_pseudonymous(
    db_session, make_account, notary, change, connection
):
    alice = make_account("alice.martin@example.com")
    bob = make_account("bob.durand@example.org")
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    postal = purpose_of(db_session, "aurore-automobiles", "postal-offers")
    staff = Change(CollectionMethod.STAFF, "fr", utcnow(), actor="staff:zoë-é")
    service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    service.grant(db_session, notary, bob, postal, shown_version=1, change=staff)
    service.withdraw(db_session, notary, alice, sms, change=change(language="fr"))
    service.grant(db_session, notary, alice, postal, shown_version=1, change=change())
    db_session.commit()

    events = events_of(db_session)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 4
    prev = ledger.GENESIS_HASH
    for event in events:
        document = json.loads(event.body)
        assert event.body == json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert event.hash == hashlib.sha256(event.body.encode("utf-8")).digest()
        assert document["prev_hash"] == prev.hex()
        assert document["seq"] == event.seq
        assert document["event_id"] == event.event_id
        assert (document["subject"], document["brand"], document["purpose"]) == (
            event.subject_key,
            event.brand_slug,
            event.purpose_key,
        )
        assert document["action"] == event.action
        for secret in ("alice", "bob", "martin", "durand", "example.com", "example.org", "@"):
            assert secret not in event.body
        prev = event.hash
    assert {
        "seq",
        "event_id",
        "subject",
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
    } <= set(json.loads(events[0].body))
    # Non-ASCII text is stored as UTF-8, not as \\u escapes, and the hash is over UTF-8.
    assert "zoë-é" in events[1].body
    assert "\\u" not in events[1].body
    assert ledger.document_of(events[0])["subject"] == alice.subject_key
    assert ledger.document_of(events[1])["subject"] == bob.subject_key
    assert ledger.document_of(events[1])["language"] == "fr"
    assert ledger.verify(connection).ok
    assert ledger.verify(connection).checked == 4


def test_each_change_has_a_receipt_for_its_event(db_session, make_account, notary, change):
    alice = make_account()
    sms = purpose_of(db_session, "maison-berlingot", "sms-offers")
    granted = service.grant(db_session, notary, alice, sms, shown_version=1, change=change())
    withdrawn = service.withdraw(db_session, notary, alice, sms, change=change())
    db_session.commit()
    events = events_of(db_session, alice)
    assert [granted.receipt.event_seq, withdrawn.receipt.event_seq] == [e.seq for e in events]
    assert granted.receipt.account_id == alice.id
    assert granted.receipt.receipt_id != withdrawn.receipt.receipt_id


def test_a_text_published_then_rolled_back_is_not_recorded_later(
    db_session, make_account, notary, change
):
    """A session that saw a version which was then rolled back must not reuse it."""
    alice = make_account()
    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    publish_version(db_session, purpose, new_text("draft"))
    service.grant(db_session, notary, alice, purpose, shown_version=2, change=change())
    db_session.rollback()

    purpose = purpose_of(db_session, "maison-berlingot", "personalised-offers")
    assert purpose.current_version == 1
    final = publish_version(db_session, purpose, new_text("final"))
    assert final is not None
    assert final.version == 2
    service.grant(db_session, notary, alice, purpose, shown_version=2, change=change())
    db_session.commit()
    [event] = events_of(db_session, alice)
    assert ledger.document_of(event)["text_hash"] == final.content_hash
    state = state_of(db_session, alice, purpose)
    assert state.content_hash == final.content_hash
