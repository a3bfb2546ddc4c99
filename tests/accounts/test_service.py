"""The accounts services called directly, as the CLI and other blueprints call them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from tests.accounts.flows import event_kinds, sessions_of, tokens_of
from tests.conftest import PASSWORD
from vrm_portal.accounts import (
    auth_sessions,
    email_tokens,
    errors,
    history,
    passwords,
    service,
    tokens,
)
from vrm_portal.accounts.models import Account, StaffRole, TokenPurpose
from vrm_portal.clock import utcnow

HOUR = timedelta(hours=1)
NEW_PASSWORD = "a fresh passphrase for alice"


def _session_for(db_session, account, *, remember=False, lifetime=HOUR):
    auth_session, token = auth_sessions.start_session(
        db_session, account, remember=remember, lifetime=lifetime
    )
    return auth_session, token


# -- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM\n", "alice@example.com"),
        ("Jöhn@Exämple.com", "jöhn@exämple.com"),
    ],
)
def test_normalise_email_gives_one_canonical_form(raw, normalised):
    assert service.normalise_email(raw) == normalised


@pytest.mark.parametrize("raw", ["", "alice", "alice@", "a" * 250 + "@example.com"])
def test_normalise_email_refuses_what_is_not_an_address(raw):
    with pytest.raises(errors.InvalidEmail):
        service.normalise_email(raw)


def test_normalise_email_says_when_the_address_is_too_long():
    with pytest.raises(errors.InvalidEmail) as refused:
        service.normalise_email("a" * 250 + "@example.com")

    assert refused.value.reason == "too_long"


def test_find_account_by_email_ignores_case_and_bad_input(db_session, make_account):
    alice = make_account("alice@example.com")

    assert service.find_account_by_email(db_session, "ALICE@example.com").id == alice.id
    assert service.find_account_by_email(db_session, "not an address") is None


# -- registration and verification ----------------------------------------------------------


def test_register_account_creates_an_unverified_account_with_a_hashed_password(db_session):
    registration = service.register_account(
        db_session, "carol@example.com", PASSWORD, locale="fr", verification_ttl=HOUR
    )

    account = registration.account
    assert registration.created
    assert account.email_verified_at is None
    assert account.locale == "fr"
    assert passwords.verify_password(account.password_hash, PASSWORD)
    assert len(account.subject_key) == 64
    assert registration.verification.record.purpose == TokenPurpose.VERIFY_EMAIL
    assert registration.verification.record.token_hash != registration.verification.secret


def test_register_account_ignores_an_unsupported_locale(db_session):
    registration = service.register_account(
        db_session, "carol@example.com", PASSWORD, locale="de", verification_ttl=HOUR
    )

    assert registration.account.locale is None


def test_register_account_reports_an_existing_address_without_touching_it(db_session, make_account):
    alice = make_account("alice@example.com")
    hash_before = alice.password_hash

    registration = service.register_account(
        db_session, "Alice@Example.com", NEW_PASSWORD, verification_ttl=HOUR
    )

    assert not registration.created
    assert registration.verification is None
    assert registration.account.id == alice.id
    assert alice.password_hash == hash_before


@pytest.mark.parametrize(
    ("password", "reason"),
    [("x" * 11, "too_short"), ("x" * 129, "too_long"), ("CAROL@example.com", "same_as_email")],
)
def test_register_account_applies_the_password_policy(db_session, password, reason):
    with pytest.raises(errors.PasswordRejected) as refused:
        service.register_account(db_session, "carol@example.com", password, verification_ttl=HOUR)

    assert refused.value.reason == reason
    assert service.count_accounts(db_session) == 0


def test_a_new_token_of_a_purpose_lapses_the_earlier_unused_ones(db_session, make_account):
    alice = make_account("alice@example.com")
    first = email_tokens.issue_email_token(db_session, alice, TokenPurpose.RESET_PASSWORD, HOUR)
    other_purpose = email_tokens.issue_email_token(
        db_session, alice, TokenPurpose.VERIFY_EMAIL, HOUR
    )

    second = email_tokens.issue_email_token(db_session, alice, TokenPurpose.RESET_PASSWORD, HOUR)

    with pytest.raises(errors.TokenRejected) as refused:
        email_tokens.peek_email_token(db_session, first.secret, TokenPurpose.RESET_PASSWORD)
    assert refused.value.reason == "used"
    assert email_tokens.peek_email_token(db_session, second.secret, TokenPurpose.RESET_PASSWORD)
    assert email_tokens.peek_email_token(
        db_session, other_purpose.secret, TokenPurpose.VERIFY_EMAIL
    )


@pytest.mark.parametrize("secret", ["", "x" * 129, "unknown-secret"])
def test_peek_refuses_an_unknown_secret(db_session, secret):
    with pytest.raises(errors.TokenRejected) as refused:
        email_tokens.peek_email_token(db_session, secret, TokenPurpose.VERIFY_EMAIL)

    assert refused.value.reason == "unknown"


def test_peek_refuses_a_secret_of_another_purpose(db_session, make_account):
    alice = make_account("alice@example.com")
    token = email_tokens.issue_email_token(db_session, alice, TokenPurpose.VERIFY_EMAIL, HOUR)

    with pytest.raises(errors.TokenRejected) as refused:
        email_tokens.peek_email_token(db_session, token.secret, TokenPurpose.RESET_PASSWORD)

    assert refused.value.reason == "unknown"


def test_peek_refuses_an_expired_token(db_session, make_account):
    alice = make_account("alice@example.com")
    token = email_tokens.issue_email_token(db_session, alice, TokenPurpose.VERIFY_EMAIL, HOUR)
    token.record.expires_at = utcnow() - timedelta(seconds=1)

    with pytest.raises(errors.TokenRejected) as refused:
        email_tokens.peek_email_token(db_session, token.secret, TokenPurpose.VERIFY_EMAIL)

    assert refused.value.reason == "expired"


def test_peek_refuses_the_token_of_another_signed_in_account(db_session, make_account):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    token = email_tokens.issue_email_token(db_session, alice, TokenPurpose.VERIFY_EMAIL, HOUR)

    with pytest.raises(errors.TokenRejected) as refused:
        email_tokens.peek_email_token(
            db_session, token.secret, TokenPurpose.VERIFY_EMAIL, signed_in=bob
        )

    assert refused.value.reason == "other_account"


def test_verify_email_works_once(db_session):
    registration = service.register_account(
        db_session, "carol@example.com", PASSWORD, verification_ttl=HOUR
    )
    secret = registration.verification.secret

    account = service.verify_email(db_session, secret)

    assert account.email_verified_at is not None
    with pytest.raises(errors.TokenRejected) as refused:
        service.verify_email(db_session, secret)
    assert refused.value.reason == "used"
    assert event_kinds(db_session, account).count("email_verified") == 1


# -- authentication and sessions ------------------------------------------------------------


def test_authenticate_returns_the_account_for_the_right_password(db_session, make_account):
    alice = make_account("alice@example.com")

    assert service.authenticate(db_session, " ALICE@example.com", PASSWORD).id == alice.id


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("nobody@example.com", PASSWORD),
        ("alice@example.com", "not the right password"),
        ("not an address", PASSWORD),
    ],
)
def test_authenticate_refuses_with_one_error_whatever_is_wrong(
    db_session, make_account, email, password
):
    make_account("alice@example.com")

    with pytest.raises(errors.InvalidCredentials):
        service.authenticate(db_session, email, password)


def test_authenticate_records_a_failed_attempt_on_the_account(db_session, make_account):
    alice = make_account("alice@example.com")

    with pytest.raises(errors.InvalidCredentials):
        service.authenticate(
            db_session,
            "alice@example.com",
            "wrong password!",
            client=history.ClientInfo("203.0.113.9", "curl"),
        )

    assert event_kinds(db_session, alice)[-1] == "sign_in_failed"


def test_authenticate_refuses_an_account_without_a_password(db_session, make_account):
    alice = make_account("alice@example.com")
    alice.password_hash = None
    db_session.flush()

    with pytest.raises(errors.InvalidCredentials):
        service.authenticate(db_session, "alice@example.com", PASSWORD)


def test_authenticate_tells_an_unverified_account_apart_only_with_the_right_password(
    db_session, make_account
):
    make_account("carol@example.com", verified=False)

    with pytest.raises(errors.InvalidCredentials):
        service.authenticate(db_session, "carol@example.com", "not the right password")
    with pytest.raises(errors.EmailNotVerified):
        service.authenticate(db_session, "carol@example.com", PASSWORD)


def test_authenticate_upgrades_a_hash_made_with_other_parameters(db_session, make_account):
    alice = make_account("alice@example.com")
    old_hasher = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    alice.password_hash = old_hasher.hash(passwords.normalise(PASSWORD))
    db_session.flush()
    old_hash = alice.password_hash

    service.authenticate(db_session, "alice@example.com", PASSWORD)

    assert alice.password_hash != old_hash
    assert not passwords.needs_rehash(alice.password_hash)
    assert passwords.verify_password(alice.password_hash, PASSWORD)


def test_session_token_is_stored_only_as_a_hash(db_session, make_account):
    alice = make_account("alice@example.com")

    auth_session, token = _session_for(db_session, alice)

    assert len(token) >= 43  # 256 bits, URL-safe base64
    assert auth_session.token_hash == tokens.hash_secret(token)
    assert token not in auth_session.token_hash


def test_resume_session_finds_a_live_session(db_session, make_account):
    alice = make_account("alice@example.com")
    auth_session, token = _session_for(db_session, alice)

    assert auth_sessions.resume_session(db_session, token, idle_timeout=HOUR) is auth_session


@pytest.mark.parametrize("token", ["", "x" * 129, "not-a-session-token"])
def test_resume_session_refuses_an_unknown_token(db_session, token):
    assert auth_sessions.resume_session(db_session, token, idle_timeout=HOUR) is None


def test_resume_session_ends_an_idle_session(db_session, make_account):
    alice = make_account("alice@example.com")
    auth_session, token = _session_for(db_session, alice)
    auth_session.last_seen_at = utcnow() - timedelta(minutes=31)

    assert (
        auth_sessions.resume_session(db_session, token, idle_timeout=timedelta(minutes=30)) is None
    )
    assert auth_session.revoked_reason == "idle"
    assert auth_sessions.resume_session(db_session, token, idle_timeout=timedelta(days=1)) is None


def test_resume_session_keeps_a_remembered_session_despite_idleness(db_session, make_account):
    alice = make_account("alice@example.com")
    auth_session, token = _session_for(
        db_session, alice, remember=True, lifetime=timedelta(days=30)
    )
    auth_session.last_seen_at = utcnow() - timedelta(days=2)

    assert auth_sessions.resume_session(db_session, token, idle_timeout=timedelta(minutes=30))
    assert utcnow() - auth_session.last_seen_at < timedelta(seconds=5)


def test_resume_session_ends_a_session_past_its_absolute_end(db_session, make_account):
    alice = make_account("alice@example.com")
    auth_session, token = _session_for(db_session, alice, remember=True)
    auth_session.expires_at = utcnow() - timedelta(seconds=1)

    assert auth_sessions.resume_session(db_session, token, idle_timeout=HOUR) is None
    assert auth_session.revoked_reason == "expired"


def test_end_session_revokes_it_once(db_session, make_account):
    alice = make_account("alice@example.com")
    auth_session, token = _session_for(db_session, alice)

    auth_sessions.end_session(db_session, auth_session)
    auth_sessions.end_session(db_session, auth_session)

    assert auth_sessions.resume_session(db_session, token, idle_timeout=HOUR) is None
    assert event_kinds(db_session, alice).count("signed_out") == 1


def test_list_active_sessions_leaves_out_ended_and_expired_ones(db_session, make_account):
    alice = make_account("alice@example.com")
    live, _ = _session_for(db_session, alice)
    ended, _ = _session_for(db_session, alice)
    expired, _ = _session_for(db_session, alice)
    auth_sessions.end_session(db_session, ended)
    expired.expires_at = utcnow() - timedelta(seconds=1)
    db_session.flush()

    assert auth_sessions.list_active_sessions(db_session, alice) == [live]


def test_revoke_session_refuses_another_accounts_session(db_session, make_account):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    bobs, _ = _session_for(db_session, bob)

    with pytest.raises(errors.SessionNotFound):
        auth_sessions.revoke_session(db_session, alice, bobs.id)

    assert bobs.revoked_at is None


@pytest.mark.parametrize("session_id", [0, -1, 2**31, 10**30])
def test_revoke_session_refuses_an_impossible_id(db_session, make_account, session_id):
    alice = make_account("alice@example.com")

    with pytest.raises(errors.SessionNotFound):
        auth_sessions.revoke_session(db_session, alice, session_id)


def test_revoke_other_sessions_keeps_the_one_asked_and_touches_no_other_account(
    db_session, make_account
):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    keep, _ = _session_for(db_session, alice)
    _session_for(db_session, alice)
    _session_for(db_session, alice)
    _bobs, _ = _session_for(db_session, bob)

    ended = auth_sessions.revoke_other_sessions(db_session, alice, keep=keep)

    assert ended == 2
    assert [s.id for s in sessions_of(db_session, alice) if s.revoked_at is None] == [keep.id]
    assert sessions_of(db_session, bob)[0].revoked_at is None


# -- passwords and addresses ----------------------------------------------------------------


def test_change_password_needs_the_current_password(db_session, make_account):
    alice = make_account("alice@example.com")
    hash_before = alice.password_hash

    with pytest.raises(errors.WrongCurrentPassword):
        service.change_password(db_session, alice, "wrong password!", NEW_PASSWORD, keep=None)

    assert alice.password_hash == hash_before


def test_change_password_ends_the_other_sessions(db_session, make_account):
    alice = make_account("alice@example.com")
    keep, _ = _session_for(db_session, alice)
    _other, other_token = _session_for(db_session, alice)

    ended = service.change_password(db_session, alice, PASSWORD, NEW_PASSWORD, keep=keep)

    assert ended == 1
    assert auth_sessions.resume_session(db_session, other_token, idle_timeout=HOUR) is None
    assert passwords.verify_password(alice.password_hash, NEW_PASSWORD)


def test_request_password_reset_for_an_unknown_address_issues_nothing(db_session):
    assert service.request_password_reset(db_session, "nobody@example.com", ttl=HOUR) is None


def test_reset_password_with_a_refused_password_keeps_the_token(db_session, make_account):
    alice = make_account("alice@example.com")
    token = service.request_password_reset(db_session, "alice@example.com", ttl=HOUR)

    with pytest.raises(errors.PasswordRejected):
        service.reset_password(db_session, token.secret, "short")

    assert tokens_of(db_session, alice, "reset_password")[0].used_at is None
    service.reset_password(db_session, token.secret, NEW_PASSWORD)
    assert passwords.verify_password(alice.password_hash, NEW_PASSWORD)


def test_request_email_change_to_a_taken_address_issues_no_token(db_session, make_account):
    alice = make_account("alice@example.com")
    make_account("bob@example.com")

    token = service.request_email_change(db_session, alice, PASSWORD, "bob@example.com", ttl=HOUR)

    assert token is None
    assert tokens_of(db_session, alice, "change_email") == []


def test_request_email_change_refuses_the_current_address(db_session, make_account):
    alice = make_account("alice@example.com")

    with pytest.raises(errors.InvalidEmail):
        service.request_email_change(db_session, alice, PASSWORD, "ALICE@example.com", ttl=HOUR)


def test_confirm_email_change_switches_the_address_and_lapses_pending_links(
    db_session, make_account
):
    alice = make_account("alice@example.com")
    reset = service.request_password_reset(db_session, "alice@example.com", ttl=HOUR)
    change = service.request_email_change(
        db_session, alice, PASSWORD, "alice.new@example.com", ttl=HOUR
    )

    done = service.confirm_email_change(db_session, change.secret, signed_in=alice, keep=None)

    assert (done.account.email, done.old_email) == ("alice.new@example.com", "alice@example.com")
    with pytest.raises(errors.TokenRejected):
        service.reset_password(db_session, reset.secret, NEW_PASSWORD)


def test_confirm_email_change_refuses_an_address_taken_meanwhile(db_session, make_account):
    alice = make_account("alice@example.com")
    change = service.request_email_change(
        db_session, alice, PASSWORD, "alice.new@example.com", ttl=HOUR
    )
    make_account("alice.new@example.com")

    with pytest.raises(errors.TokenRejected) as refused:
        service.confirm_email_change(db_session, change.secret, signed_in=alice, keep=None)

    assert refused.value.reason == "email_taken"
    assert alice.email == "alice@example.com"


# -- the rest ----------------------------------------------------------------------------------


def test_set_locale_records_a_change_only_when_there_is_one(db_session, make_account):
    alice = make_account("alice@example.com")

    service.set_locale(db_session, alice, "fr")
    service.set_locale(db_session, alice, "fr")

    assert alice.locale == "fr"
    assert event_kinds(db_session, alice).count("locale_changed") == 1
    with pytest.raises(ValueError, match="unsupported locale"):
        service.set_locale(db_session, alice, "de")


def test_list_events_pages_newest_first(db_session, make_account):
    alice = make_account("alice@example.com")
    for _ in range(4):
        _session_for(db_session, alice)  # one "signed_in" event each

    first, more = history.list_events(db_session, alice, page=1, per_page=3)
    second, no_more = history.list_events(db_session, alice, page=2, per_page=3)

    assert more
    assert not no_more
    assert [e.kind for e in first] == ["signed_in"] * 3
    assert [e.kind for e in second] == ["signed_in", "registered"]
    assert first[0].id > first[-1].id > second[0].id


def test_create_staff_account_creates_a_verified_staff_member(db_session):
    account = service.create_staff_account(db_session, "dpo@example.com", PASSWORD, StaffRole.DPO)

    assert account.staff_role == "dpo"
    assert account.is_verified
    assert event_kinds(db_session, account) == ["staff_role_granted"]


def test_create_staff_account_promotes_an_existing_account(db_session, make_account):
    alice = make_account("alice@example.com")

    account = service.create_staff_account(
        db_session, "alice@example.com", PASSWORD, StaffRole.ADMIN
    )

    assert account.id == alice.id
    assert account.staff_role == "admin"
    assert db_session.scalars(select(Account).where(Account.email == "alice@example.com")).one()
