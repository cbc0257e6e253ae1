"""An `ATRYUM_TOKEN_COMMAND` for the shared hook: mint an access token from the test
oidc-provider by client credentials and print the token response (JSON) on stdout.

Environment: MINT_TOKEN_URL, MINT_CLIENT_ID, MINT_CLIENT_SECRET, MINT_RESOURCE, MINT_SCOPE;
MINT_LOG (a file: one line per mint, so a test can count them); MINT_FIRST_RESOURCE (the
resource of the very first mint only — a wrong one makes a token Atryum refuses).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx2


def main() -> int:
    log = Path(os.environ["MINT_LOG"])
    first = not log.exists() or not log.read_text()
    resource = os.environ["MINT_RESOURCE"]
    if first and os.environ.get("MINT_FIRST_RESOURCE"):
        resource = os.environ["MINT_FIRST_RESOURCE"]
    resp = httpx2.post(
        os.environ["MINT_TOKEN_URL"],
        data={
            "grant_type": "client_credentials",
            "scope": os.environ["MINT_SCOPE"],
            "resource": resource,
        },
        auth=(os.environ["MINT_CLIENT_ID"], os.environ["MINT_CLIENT_SECRET"]),
    )
    resp.raise_for_status()
    body = resp.json()
    with log.open("a") as f:
        f.write(f"{resource}\n")
    json.dump({"access_token": body["access_token"], "expires_in": body["expires_in"]}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
