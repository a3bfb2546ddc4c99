"""Recovery codes, the service: ten single-use codes, hashed, a new set replaces the old."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from vrm_portal.accounts import recovery_codes
from vrm_portal.accounts.models import AccountEvent, RecoveryCode


def test_ten_distinct_readable_codes(make_account, db_session):
    alice = make_account()
    codes = recovery_codes.replace_codes(db_session, alice)
    assert len(codes) == 10 == len(set(codes))
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", c) for c in codes)
    assert recovery_codes.remaining_codes(db_session, alice) == 10


def test_only_digests_are_stored(make_account, db_session):
    alice = make_account()
    codes = recovery_codes.replace_codes(db_session, alice)
    stored = set(
        db_session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.account_id == alice.id)
        )
    )
    expected = {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert stored == expected


def test_each_code_works_once(make_account, db_session):
    alice = make_account()
    codes = recovery_codes.replace_codes(db_session, alice)
    assert recovery_codes.use_code(db_session, alice, codes[3]) == 9
    with pytest.raises(recovery_codes.InvalidRecoveryCode):
        recovery_codes.use_code(db_session, alice, codes[3])
    assert recovery_codes.remaining_codes(db_session, alice) == 9


def test_a_new_set_replaces_the_old(make_account, db_session):
    alice = make_account()
    old = recovery_codes.replace_codes(db_session, alice)
    recovery_codes.use_code(db_session, alice, old[0])
    new = recovery_codes.replace_codes(db_session, alice)
    for code in old[1:]:
        with pytest.raises(recovery_codes.InvalidRecoveryCode):
            recovery_codes.use_code(db_session, alice, code)
    assert recovery_codes.use_code(db_session, alice, new[0]) == 9
    created = db_session.scalars(
        select(AccountEvent)
        .where(AccountEvent.account_id == alice.id, AccountEvent.kind == "recovery_codes_created")
        .order_by(AccountEvent.id)
    ).all()
    assert [e.detail["unused_replaced"] for e in created] == [0, 9]


def test_codes_are_one_accounts_only(make_account, db_session):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    codes = recovery_codes.replace_codes(db_session, alice)
    with pytest.raises(recovery_codes.InvalidRecoveryCode):
        recovery_codes.use_code(db_session, bob, codes[0])


@pytest.mark.parametrize(
    "typed",
    ["{code}", "{upper}", " {plain} ", "{spaced}", "{lookalikes}"],
)
def test_codes_are_read_as_people_type_them(make_account, db_session, typed):
    alice = make_account()
    code = recovery_codes.replace_codes(db_session, alice)[0]
    plain = code.replace("-", "")
    variants = {
        "code": code,
        "upper": code.upper(),
        "plain": plain,
        "spaced": plain[:5] + " " + plain[5:],
        "lookalikes": plain.replace("0", "O").replace("1", "l"),
    }
    assert recovery_codes.use_code(db_session, alice, typed.format(**variants)) == 9


def test_removing_them_all(make_account, db_session):
    alice = make_account()
    recovery_codes.replace_codes(db_session, alice)
    assert recovery_codes.remove_codes(db_session, alice) == 10
    assert not recovery_codes.has_codes(db_session, alice)
