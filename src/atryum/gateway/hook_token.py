"""The hook's bearer token, set as the Go original's shared hook sets it (identity.md §1).

`ATRYUM_ACCESS_TOKEN` is sent as is. `ATRYUM_TOKEN_COMMAND` is run (by the shell) for a token:
its output is the raw token or JSON with `access_token`/`accessToken`/`token` and
`expires_at`/`expiresAt`/`expires_in`; the token is cached in the hook's state directory
(0600, tied to the command and Atryum's URL) and minted again `ATRYUM_TOKEN_REFRESH_SKEW_MS`
before it expires, or once when Atryum answers 401. A token never reaches stdout or an error.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

DEFAULT_LIFETIME = 55 * 60.0  # seconds, when the command says nothing about expiry
CACHE_NAME = "token-cache.json"


class TokenError(Exception):
    """The token command failed or answered something that is not a token."""


def _env_seconds(name: str, default_ms: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default_ms)
    except ValueError:
        value = default_ms
    return max(value, 0.0) / 1000


def _positive(value: Any) -> float:
    if isinstance(value, str) and value.strip():
        try:
            value = float(value)
        except ValueError:
            return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value > 0 else 0.0


def parse_token(output: str, now: float) -> tuple[str, float]:
    """(token, expires at in epoch seconds) from a token command's output."""
    text = output.strip()
    if not text:
        raise TokenError("the token command printed no token")
    if not text.startswith("{"):
        if any(c.isspace() for c in text):
            raise TokenError("the token command's raw output must not contain whitespace")
        return text, now + DEFAULT_LIFETIME
    try:
        parsed = json.loads(text)
    except ValueError:
        raise TokenError("the token command printed JSON that does not parse") from None
    if not isinstance(parsed, dict):
        raise TokenError("the token command's JSON is not an object")
    names = ("access_token", "accessToken", "token")
    token = next((v for k in names if isinstance(v := parsed.get(k), str)), "")
    if not token:
        raise TokenError("the token command's answer has no access_token")
    if any(c.isspace() for c in token):
        raise TokenError("the token command's token must not contain whitespace")
    at = _positive(parsed.get("expires_at")) or _positive(parsed.get("expiresAt"))
    if at:
        return token, at / 1000 if at > 1e11 else at  # milliseconds or seconds
    expires_in = _positive(parsed.get("expires_in"))
    return token, now + (expires_in or DEFAULT_LIFETIME)


@dataclass
class TokenSource:
    static: str
    command: str
    url: str
    state_dir: Callable[[], Path]
    skew: float
    command_timeout: float
    _token: str = ""
    _expires: float = 0.0

    @classmethod
    def from_env(cls, url: str, state_dir: Callable[[], Path]) -> TokenSource:
        return cls(
            static=os.environ.get("ATRYUM_ACCESS_TOKEN", ""),
            command=os.environ.get("ATRYUM_TOKEN_COMMAND", ""),
            url=url.rstrip("/"),
            state_dir=state_dir,
            skew=_env_seconds("ATRYUM_TOKEN_REFRESH_SKEW_MS", 60_000),
            command_timeout=_env_seconds("ATRYUM_TOKEN_COMMAND_TIMEOUT_MS", 10_000),
        )

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.command}\n{self.url}".encode()).hexdigest()

    def token(self, *, refresh: bool = False) -> str:
        if not self.command:
            return self.static
        now = time.time()
        if not refresh:
            if self._token and now < self._expires - self.skew:
                return self._token
            cached = self._read_cache(now)
            if cached is not None:
                self._token, self._expires = cached
                return self._token
        self._token, self._expires = parse_token(self._run(), now)
        self._write_cache()
        return self._token

    def _run(self) -> str:
        try:
            done = subprocess.run(
                self.command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=self.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TokenError(
                f"the token command did not answer within {self.command_timeout:.0f} s"
            ) from None
        if done.returncode != 0:
            raise TokenError(f"the token command failed (exit code {done.returncode})")
        return done.stdout

    def _cache_file(self) -> Path:
        return self.state_dir() / CACHE_NAME

    def _read_cache(self, now: float) -> tuple[str, float] | None:
        try:
            data = json.loads(self._cache_file().read_text())
            token, expires, key = data["token"], float(data["expiresAt"]) / 1000, data["key"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if isinstance(token, str) and token and key == self.key and now < expires - self.skew:
            return token, expires
        return None

    def _write_cache(self) -> None:
        """Best effort (the in-memory token still works), written 0600 and renamed into place."""
        path = self._cache_file()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        data = {"token": self._token, "expiresAt": self._expires * 1000, "key": self.key}
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)


class BearerAuth(httpx2.Auth):
    """Every request carries the token; a 401 mints a fresh one (a command only) and retries
    once."""

    requires_request_body = True

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.source.token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.source.command:
            request.headers["Authorization"] = f"Bearer {self.source.token(refresh=True)}"
            yield request
