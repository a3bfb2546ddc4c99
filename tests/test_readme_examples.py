"""The shell examples of the README and of the brand API guide work as written.

A block marked with ``<!-- example: NAME -->`` on the line before its fence is run with
bash (``set -euo pipefail``) from the repository's root, against a portal started the way
``make run`` starts it: development settings on a scratch SQLite database, ``vrm
init-db``, ``vrm seed-demo``, then ``flask run`` on a free port, which ``PORTAL`` names.
Blocks that share a NAME are one walk-through, run in order in the same shell. Links from
the README and CONTRIBUTING to files of the repository must lead somewhere.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BRAND_API_GUIDE = ROOT / "docs" / "brand-api.md"
EXAMPLE = re.compile(r"^<!-- example: ([a-z0-9-]+) -->\n```(?:sh|bash)\n(.*?)^```$", re.M | re.S)
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def examples(path: Path) -> dict[str, str]:
    """The marked blocks of ``path``: name -> script (blocks of one name joined in order)."""
    scripts: dict[str, str] = {}
    for name, body in EXAMPLE.findall(path.read_text(encoding="utf-8")):
        scripts[name] = scripts.get(name, "") + body
    return scripts


def json_documents(text: str) -> list[Any]:
    """Every JSON object or array printed in ``text``, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while index < len(text):
        if text[index] in "{[":
            try:
                value, index = decoder.raw_decode(text, index)
            except json.JSONDecodeError:
                index += 1
            else:
                found.append(value)
        else:
            index += 1
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        connection = HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        ok = connection.getresponse().status == 200
        connection.close()
    except OSError:
        return False
    return ok


@dataclass
class DevPortal:
    url: str
    env: dict[str, str]
    log: Path

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=ROOT,
            env={**self.env, "PORTAL": self.url},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def explain(self, result: subprocess.CompletedProcess[str]) -> str:
        server = self.log.read_text(errors="replace")[-3000:]
        return (
            f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n"
            f"{result.stderr}\n--- server log\n{server}"
        )


@pytest.fixture(scope="module")
def dev_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPortal]:
    """The portal as ``make run`` serves it, on its own database and port."""
    folder = tmp_path_factory.mktemp("readme")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # A terminal's environment: no settings of the test run, and no outer `make` (whose
    # MAKELEVEL would make `make vrm` print "Entering directory" on stdout).
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VRM_", "MAKE", "MFLAGS"))
    }
    env |= {
        "VRM_ENV": "development",
        "VRM_INSTANCE_PATH": str(folder / "instance"),
        "VRM_DATABASE_URL": f"sqlite:///{folder / 'vrm.sqlite3'}",
        "VRM_JOBS_URL": f"sqlite:///{folder / 'jobs.sqlite3'}",
        "VRM_PUBLIC_BASE_URL": url,
    }
    for step in (["vrm", "init-db"], ["vrm", "seed-demo"]):
        done = subprocess.run(
            FLASK + step, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{step}: {done.stdout}\n{done.stderr}"
    log = folder / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*FLASK, "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the portal did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield DevPortal(url, env, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_examples_are_marked_shell_blocks():
    assert {"brand-api", "new-client"} <= examples(README).keys()
    assert "brand-api-guide" in examples(BRAND_API_GUIDE)
    for path in (README, BRAND_API_GUIDE):
        markers = path.read_text(encoding="utf-8").count("<!-- example: ")
        assert markers == len(EXAMPLE.findall(path.read_text(encoding="utf-8"))), (
            f"{path.name}: a marker is not followed by a ```sh block"
        )


def test_the_readme_brand_api_walk_through(dev_portal: DevPortal):
    result = dev_portal.run(examples(README)["brand-api"])
    assert result.returncode == 0, dev_portal.explain(result)
    documents = json_documents(result.stdout)
    brands = next(d for d in documents if isinstance(d, list))
    assert {"slug": "aurore-automobiles", "name": "Aurore Automobiles"} in brands
    token = next(d for d in documents if isinstance(d, dict) and "access_token" in d)
    assert token["token_type"] == "Bearer"
    pages = [d for d in documents if isinstance(d, dict) and "items" in d]
    consumers, changes = pages
    assert len(consumers["items"]) == 1, "the demo consumer, as Aurore Automobiles knows them"
    assert consumers["items"][0]["consumer_id"]
    assert "consent.granted" in {change["type"] for change in changes["items"]}


def test_the_readme_new_client_example(dev_portal: DevPortal):
    result = dev_portal.run(examples(README)["new-client"])
    assert result.returncode == 0, dev_portal.explain(result)
    created = json_documents(result.stdout)[0]
    assert created["brand"] == "aurore-automobiles"
    assert created["client_secret"]
    assert created["client_id"] in result.stdout.split("\n", 1)[1], "list-clients shows it"
    assert "demo-aurore-crm" in result.stdout


def test_the_brand_api_guide_walk_through(dev_portal: DevPortal):
    result = dev_portal.run(examples(BRAND_API_GUIDE)["brand-api-guide"])
    assert result.returncode == 0, dev_portal.explain(result)
    documents = [d for d in json_documents(result.stdout) if isinstance(d, dict)]
    assert any("client_secret" in d for d in documents)
    assert any("access_token" in d for d in documents)
    consumer_id = next(d for d in documents if "items" in d)["items"][0]["consumer_id"]
    assert any(d.get("consumer_id") == consumer_id and "consents" in d for d in documents)
    interaction = documents[-1]
    assert interaction["type"] == "purchase", interaction


@pytest.mark.parametrize("path", ["README.md", "CONTRIBUTING.md", "docs/brand-api.md"])
def test_links_lead_to_files_of_the_repository(path: str):
    document = ROOT / path
    targets = re.findall(r"\]\(([^)\s]+)\)", document.read_text(encoding="utf-8"))
    local = [t.split("#")[0] for t in targets if not t.startswith(("http:", "https:", "#"))]
    missing = [t for t in local if t and not (document.parent / t).exists()]
    assert not missing, f"{path} links to files that do not exist: {missing}"
