"""What agent token verification costs on the hook path: decisions with and without `[[auth]]`.

    .venv/bin/python bench/auth_overhead.py [--rate 200] [--duration 20]
                                            [--dialects sqlite,postgresql]

For each dialect and each mode — no auth (the body's `agent_id`), and `[[auth]]` with RS256
(2048-bit) or ES256 bearer tokens — a fresh database, one `atryum run` subprocess, a registered
agent and an `auto_approve` rule, then the open-loop load of `gate_latency.py` (each request a
full hook submission, latency counted from its scheduled send time). The issuer's discovery
document and key set come from a small local HTTP server, fetched once by Atryum; after that
verification is a signature check and the claim checks. Target at 200/s: verification adds
≤ 1 ms to the p50 of the run without auth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from atryum.config import AuthBlock
from atryum.identity.verifier import AgentAuth
from benchkit import free_port, scratch_database
from gate_latency import Server, drive, percentile

AGENT = "bench-agent"
AUDIENCE = "https://atryum.bench/"
SCOPE = "atryum:invoke"
TARGET_ADDED_P50_MS = 1.0


class Issuer:
    """An OIDC issuer as far as Atryum needs one: discovery and a key set over HTTP."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: dict[str, Any] = {
            "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()),
        }
        jwks = {
            "keys": [
                {**RSAAlgorithm.to_jwk(self.keys["RS256"].public_key(), as_dict=True), "kid": "rs"},
                {**ECAlgorithm.to_jwk(self.keys["ES256"].public_key(), as_dict=True), "kid": "es"},
            ]
        }
        docs = {
            "/.well-known/openid-configuration": {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks",
            },
            "/jwks": jwks,
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(docs.get(self.path, {})).encode()
                self.send_response(200 if self.path in docs else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, alg: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "scope": SCOPE,
            "client_id": AGENT,
            "jti": uuid.uuid4().hex,
        }
        kid = "rs" if alg == "RS256" else "es"
        return jwt.encode(claims, self.keys[alg], algorithm=alg, headers={"kid": kid})

    def block(self) -> AuthBlock:
        return AuthBlock(enabled=True, issuer=self.url, audience=AUDIENCE, required_scope=SCOPE)

    def auth_config(self) -> str:
        # (follows the [server] lines: operators are left open so the bench can set up)
        return (
            "allow_unauthenticated = true\n"
            f'[[auth]]\nenabled = true\nissuer = "{self.url}"\naudience = "{AUDIENCE}"\n'
            f'required_scope = "{SCOPE}"\n'
        )

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Row:
    dialect: str
    mode: str
    achieved: float
    sent: int
    p50: float
    p99: float
    errors: int


def run_mode(dialect: str, mode: str, issuer: Issuer, rate: int, duration: float) -> Row:
    headers = {} if mode == "off" else {"Authorization": f"Bearer {issuer.token(mode)}"}
    extra = "" if mode == "off" else issuer.auth_config()
    with tempfile.TemporaryDirectory(prefix="atryum-bench-") as tmp:
        workdir = Path(tmp)
        with scratch_database(dialect, workdir) as url, Server(url, workdir, extra) as server:
            setup = [
                ("/api/v1/agents", {"name": "Bench agent", "agent_ids": [AGENT]}),
                ("/api/v1/rules", {"action": "auto_approve", "tool_patterns": ["Read"]}),
            ]
            for path, body in setup:
                httpx2.post(f"{server.url}{path}", json=body).raise_for_status()
            asyncio.run(drive(server.url, 50, 2, headers=headers, agent_id=AGENT))  # warm-up
            print(f"  {dialect} / auth {mode}: {rate}/s for {duration:.0f} s …", file=sys.stderr)
            lat, errors, wall = asyncio.run(
                drive(server.url, rate, duration, headers=headers, agent_id=AGENT)
            )
    return Row(
        dialect=dialect,
        mode=mode,
        achieved=len(lat) / wall,
        sent=len(lat) + errors,
        p50=statistics.median(lat) if lat else float("nan"),
        p99=percentile(lat, 0.99),
        errors=errors,
    )


def verify_cost(issuer: Issuer, alg: str, n: int = 500) -> tuple[float, float]:
    """In-process ms per token: a token seen for the first time (signature and claims), and
    the same token again (remembered: claims only)."""
    auth = AgentAuth.from_blocks([issuer.block()])
    auth.verify(issuer.token(alg), fetch=True)  # fetch the keys once
    fresh = [issuer.token(alg) for _ in range(n)]
    start = time.perf_counter()
    for token in fresh:
        auth.verify(token)
    first = (time.perf_counter() - start) / n * 1000
    start = time.perf_counter()
    for _ in range(n):
        auth.verify(fresh[0])
    return first, (time.perf_counter() - start) / n * 1000


def table(rows: list[Row], rate: int) -> str:
    head = (
        f"{'dialect':<11}{'auth':<7}{'target/s':>9}{'achieved/s':>12}{'sent':>8}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'+p50 ms':>10}  target"
    )
    lines = [head, "-" * len(head)]
    baseline = {r.dialect: r.p50 for r in rows if r.mode == "off"}
    for r in rows:
        added, verdict = "", ""
        if r.mode != "off" and r.dialect in baseline:
            delta = r.p50 - baseline[r.dialect]
            added = f"{delta:+.2f}"
            verdict = "met" if delta <= TARGET_ADDED_P50_MS and r.errors == 0 else "MISSED"
        lines.append(
            f"{r.dialect:<11}{r.mode:<7}{rate:>9}{r.achieved:>12.1f}{r.sent:>8}"
            f"{r.p50:>9.2f}{r.p99:>9.2f}{r.errors:>8}{added:>10}  {verdict}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=200, help="requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per mode")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    args = parser.parse_args()
    issuer = Issuer()
    rows: list[Row] = []
    try:
        for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
            for mode in ("off", "RS256", "ES256"):
                rows.append(run_mode(dialect, mode, issuer, args.rate, args.duration))
        costs = {alg: verify_cost(issuer, alg) for alg in ("RS256", "ES256")}
    finally:
        issuer.close()
    print(table(rows, args.rate))
    print(
        "\nin-process verification, ms per token (first seen / repeated): "
        + ", ".join(f"{alg} {a:.3f} / {b:.3f}" for alg, (a, b) in costs.items())
    )
    print(
        f"\ntarget at {args.rate}/s: token verification adds ≤ {TARGET_ADDED_P50_MS:.0f} ms to "
        "the p50 without auth, zero errors (latency from each request's scheduled send time)"
    )


if __name__ == "__main__":
    main()
