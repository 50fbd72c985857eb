"""Talking to a gateway process over HTTP in tests: a signed-in client of `/api/v1`."""

from __future__ import annotations

import uuid

import aiohttp


class Client:
    """One user's calls to `/api/v1` (anonymous until `token` is set). Every answer's text is kept in `answers`, so a
    test can search all it was told."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None = None) -> None:
        self.session, self.url, self.token = session, url, token
        self.answers: list[str] = []

    async def call(self, method: str, path: str, body=None, expect: int | None = None):
        """(status, JSON body or None); with `expect`, asserts the status."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, f"{self.url}/api/v1{path}", json=body, headers=headers) as response:
            self.answers.append(await response.text())
            data = await response.json() if response.content_type == "application/json" else None
            if expect is not None:
                assert response.status == expect, (method, path, response.status, data)
            return response.status, data


async def new_user(session: aiohttp.ClientSession, url: str, email: str | None = None) -> Client:
    """A freshly registered user, signed in."""
    client = Client(session, url)
    email = email or f"u{uuid.uuid4().hex[:8]}@example.com"
    _, data = await client.call("POST", "/auth/register", {"email": email, "password": "correct horse"}, 201)
    client.token = data["access_token"]
    return client
