"""Who runs the portal: the help page's section and every page's footer, in English and
French, from the settings (config.py checks them at start-up: tests/test_app.py)."""

from __future__ import annotations

import re

import pytest

OPERATOR = {
    "OPERATOR_NAME": "Groupe Exemple & Fils SA",
    "OPERATOR_ADDRESS": "4 rue de l'Exemple, 13001 Marseille, France",
    "DPO_CONTACT": "privacy@groupe-exemple.example",
    "SUPERVISORY_AUTHORITY_NAME": "Garante per la protezione dei dati personali",
    "SUPERVISORY_AUTHORITY_URL": "https://www.garanteprivacy.it/",
}
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9"}


@pytest.fixture
def operator(app, monkeypatch):
    for name, value in OPERATOR.items():
        monkeypatch.setitem(app.config, name, value)
    return OPERATOR


def _footer(html: str) -> str:
    match = re.search(r'<footer class="site-footer">(.*?)</footer>', html, re.S)
    assert match, "no footer"
    return match.group(1)


def _operator_section(html: str) -> str:
    match = re.search(r'<section class="help-section" id="operator"(.*?)</section>', html, re.S)
    assert match, "no 'Who runs this portal' section"
    return match.group(1)


@pytest.mark.parametrize("headers", [{}, FRENCH], ids=["en", "fr"])
def test_the_help_page_says_who_runs_the_portal(client, operator, headers):
    html = client.get("/help", headers=headers).get_data(as_text=True)
    section = _operator_section(html)
    assert "Groupe Exemple &amp; Fils SA" in section
    assert "4 rue de l&#39;Exemple, 13001 Marseille, France" in section
    assert (
        '<a href="mailto:privacy@groupe-exemple.example">privacy@groupe-exemple.example</a>'
        in section
    )
    assert '<a href="https://www.garanteprivacy.it/" rel="noopener">' in section
    assert section.count("Garante per la protezione dei dati personali") == 2
    assert '<a href="#operator">' in html, "listed in the page's contents"


def test_the_help_page_in_english_names_the_right_to_complain(client, operator):
    section = _operator_section(client.get("/help").get_data(as_text=True))
    assert "Who runs this portal" in section
    assert "Your right to complain" in section
    assert "the right to lodge a complaint" in section


@pytest.mark.parametrize("path", ["/", "/help", "/login", "/no-such-page"])
@pytest.mark.parametrize("headers", [{}, FRENCH], ids=["en", "fr"])
def test_every_footer_names_the_operator_the_dpo_and_the_authority(client, operator, path, headers):
    response = client.get(path, headers=headers)
    html = response.get_data(as_text=True)
    assert f'<html lang="{"fr" if headers else "en"}">' in html
    footer = _footer(html)
    assert "Groupe Exemple &amp; Fils SA" in footer
    assert '<a href="mailto:privacy@groupe-exemple.example">' in footer
    assert '<a href="https://www.garanteprivacy.it/" rel="noopener">' in footer
    assert "Garante per la protezione dei dati personali" in footer
    assert ("Aide et confidentialité" if headers else "Help and privacy") in footer


def test_a_dpo_contact_page_is_linked_as_it_is(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DPO_CONTACT", "https://example.com/privacy/contact")
    html = client.get("/help").get_data(as_text=True)
    link = '<a href="https://example.com/privacy/contact">'
    assert link in _operator_section(html)
    assert link in _footer(html)
    assert "mailto:" not in html


def test_the_demo_operator_is_shown_by_default(client):
    html = client.get("/help").get_data(as_text=True)
    section = _operator_section(html)
    assert "Demo Brand Group SAS" in section
    assert "1 place de la Démo, 69002 Lyon, France" in section
    assert 'href="mailto:dpo@demo.vrm.example"' in section
    assert 'href="https://www.cnil.fr/"' in _footer(html)
