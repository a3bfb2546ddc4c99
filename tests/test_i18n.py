"""French and English: language selection, and a French catalogue that covers the source."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import sign_in, submit

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "vrm_portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _source_messages() -> set[str]:
    method_map = [("**.py", "python"), ("**.html", "jinja2"), ("**.txt", "jinja2")]
    found: set[str] = set()
    for folder in ("vrm_portal", "templates"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map, keywords=KEYWORDS
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_in_the_source_has_a_french_translation():
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    translated = {
        m.id[0] if isinstance(m.id, tuple) else m.id
        for m in catalogue
        if m.id
        and m.string
        and all(m.string if isinstance(m.string, tuple) else [m.string])
        and not m.fuzzy
    }
    missing = sorted(_source_messages() - translated)
    assert not missing, "untranslated (run `make messages`, translate in fr/messages.po): " + repr(
        missing
    )


def test_browser_language_picks_french(client):
    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    html = page.get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Se connecter" in html


def test_unsupported_browser_language_falls_back_to_english(client):
    html = client.get("/login", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html


def test_the_accounts_language_wins_over_the_browsers(client, make_account):
    make_account("alice@example.com", locale="fr")
    sign_in(client, "alice@example.com")
    html = client.get("/account/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Mon compte" in html


def test_an_unknown_language_is_refused_with_a_message(client):
    response = submit(client, "/locale", {"locale": "xx", "next": "/help"}, form_page="/help")
    assert response.status_code == 302
    assert response.location == "/help"
    html = client.get("/help").get_data(as_text=True)
    assert "This language is not available." in html
    assert '<html lang="en">' in html


def test_emails_are_written_in_the_accounts_language(client, make_account, mailbox):
    make_account("alice@example.com", locale="fr")
    submit(client, "/password/forgot", {"email": "alice@example.com"})
    message = mailbox.wait_for("alice@example.com")
    assert message["Subject"] != "Choose a new password"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "mot de passe" in body.lower()


def test_the_email_in_use_notice_is_in_its_owners_language(client, make_account, mailbox):
    make_account("alice@example.com", locale="en")
    make_account("bruno@example.com", locale="fr")
    sign_in(client, "alice@example.com")
    submit(
        client,
        "/account/email",
        {"new_email": "bruno@example.com", "current_password": "correct horse battery staple"},
    )
    message = mailbox.wait_for("bruno@example.com")
    assert message["Subject"] != "Someone tried to use your address on another account"
    assert "adresse" in message.get_body(preferencelist=("plain",)).get_content().lower()


def test_dates_in_emails_are_localised_and_say_utc(client, make_account, mailbox):
    make_account("alice@example.com", locale="fr")
    sign_in(client, "alice@example.com")
    submit(
        client,
        "/account/password",
        {
            "current_password": "correct horse battery staple",
            "new_password": "a brand new passphrase here",
            "new_password_confirm": "a brand new passphrase here",
        },
    )
    message = mailbox.wait_for("alice@example.com")
    body = message.get_body(preferencelist=("plain",)).get_content()
    month_names_fr = (
        "janv.",
        "févr.",
        "mars",
        "avr.",
        "mai",
        "juin",
        "juil.",
        "août",
        "sept.",
        "oct.",
        "nov.",
        "déc.",
    )
    assert any(name in body for name in month_names_fr), body
    assert "UTC" in body
