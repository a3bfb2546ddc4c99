"""A real OpenID Connect provider for the tests: the portal's development provider
(``vrm_portal.dev_idp``) served over HTTP by werkzeug in a thread, on a free port.

The portal talks to it exactly as to Google or Keycloak. Its ``Quirks`` make it
misbehave on demand (wrong issuer or audience, a replayed ID token, slowness).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from vrm_portal.dev_idp.provider import IdentityProvider, Quirks
from vrm_portal.dev_idp.views import create_idp_app

CLIENT_ID = "vrm-portal-test"
CLIENT_SECRET = "test-client-secret"
SECOND_CLIENT_ID = "vrm-portal-test-second"
#: Provider names the test app is configured with.
PROVIDER = "test-id"
SECOND_PROVIDER = "second-id"
DOWN_PROVIDER = "down-id"


@dataclass
class RunningProvider:
    url: str
    idp: IdentityProvider
    server: BaseWSGIServer
    thread: threading.Thread

    def allow_portal(self, portal_url: str) -> None:
        """Register the portal at ``portal_url`` (its callback URLs) with the provider."""
        for client_id, name in ((CLIENT_ID, PROVIDER), (SECOND_CLIENT_ID, SECOND_PROVIDER)):
            known = self.idp.clients.get(client_id)
            uris = (known.redirect_uris if known else ()) + (
                f"{portal_url}/auth/oauth/{name}/callback",
            )
            self.idp.register_client(client_id, CLIENT_SECRET, *uris)

    def reset(self) -> None:
        self.idp.quirks = Quirks()
        self.idp.last_id_token = None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def portal_settings(self) -> dict[str, dict[str, str]]:
        """The portal's ``SOCIAL_PROVIDERS``: two clients of this provider, and one down."""
        return {
            PROVIDER: {
                "preset": "oidc",
                "issuer": self.url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "display_name": "Test ID",
            },
            SECOND_PROVIDER: {
                "preset": "oidc",
                "issuer": self.url,
                "client_id": SECOND_CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "display_name": "Second ID",
                "token_auth_method": "client_secret_post",
            },
            DOWN_PROVIDER: {
                "preset": "oidc",
                "issuer": f"http://127.0.0.1:{closed_port()}",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "display_name": "Down ID",
            },
        }


def closed_port() -> int:
    """A local port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _QuietHandler(WSGIRequestHandler):
    """No access log: a slow answer finishing after its test would log into a closed
    capture stream."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def start_identity_provider() -> RunningProvider:
    holder: dict[str, object] = {}

    def late_app(environ: dict[str, object], start_response: object) -> object:
        return holder["app"](environ, start_response)  # type: ignore[operator]

    server = make_server("127.0.0.1", 0, late_app, threaded=True, request_handler=_QuietHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    idp = IdentityProvider(issuer=url)
    holder["app"] = create_idp_app(idp)
    thread = threading.Thread(target=server.serve_forever, name="test-idp", daemon=True)
    thread.start()
    return RunningProvider(url=url, idp=idp, server=server, thread=thread)
