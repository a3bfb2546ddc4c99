"""Seed the fault harness's portal (run by bench/faults.py with the portal's settings in
the environment): the demo catalogue, N verified consumers with a password, an API
client per brand, and a webhook endpoint per brand on the harness's receiver. Prints
what the load needs as JSON on stdout.

usage: faults_seed.py CONSUMERS WEBHOOK_BASE_URL PASSWORD
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passwords import hash_password
from vrm_portal.brands import clients
from vrm_portal.brands.models import Brand
from vrm_portal.clock import utcnow
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db
from vrm_portal.webhooks import service as webhooks
from wsgi import app

SCOPES = ["consumers:read", "changes:read"]


def main() -> None:
    count, webhook_base, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with app.app_context():
        session = db.session
        load_demo_catalogue(session)
        db.commit()
        password_hash = hash_password(password)
        emails = []
        for number in range(count):
            now = utcnow()
            email = f"consumer{number:04d}@faults.vrm.example"
            session.add(
                Account(
                    email=email,
                    email_verified_at=now,
                    password_hash=password_hash,
                    password_changed_at=now,
                    locale="en",
                    given_name="Fault",
                    family_name=f"Tester {number}",
                    phone=f"+3361{number:07d}",
                    postal_address=f"{number} rue des Pannes\n69002 Lyon\nFrance",
                    attention_emails=False,
                )
            )
            emails.append(email)
        db.commit()
        brands = {}
        for brand in session.scalars(select(Brand).order_by(Brand.id)):
            created = clients.create_client(session, brand, SCOPES, utcnow(), "fault harness")
            # http:// to loopback, which only development accepts from the CLI: the
            # harness's receiver stands in for a brand's https endpoint.
            endpoint, secret = webhooks.register_endpoint(
                session,
                brand,
                f"{webhook_base}/hooks/{brand.slug}",
                allow_loopback_http=True,
                now=utcnow(),
            )
            brands[brand.slug] = {
                "client_id": created.client.client_id,
                "client_secret": created.secret,
                "webhook_secret": secret,
                "webhook_id": endpoint.id,
            }
        db.commit()
    print(json.dumps({"emails": emails, "brands": brands}))


if __name__ == "__main__":
    main()
