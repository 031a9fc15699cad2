"""The gateway: forwards a request to a configured upstream and streams both bodies through one
shared `httpx.AsyncClient` (connection pooling across requests), never holding a body in memory.

Redirects are not followed: a 3xx goes back to the caller as the upstream sent it, Location
included, so the gateway itself never fetches from a host it was not configured with."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx

from app.domain.gateway import UnknownService, UpstreamFailed, UpstreamTimeout, upstream_url

log = logging.getLogger("kycflow.gateway")


class UpstreamBroken(Exception):
    """The upstream failed after its answer started: the caller's connection must be cut, not ended
    cleanly, or a truncated body would look complete."""


class GatewayService:
    def __init__(self, services: dict[str, str], *, connect_timeout: float, read_timeout: float) -> None:
        self.services = services
        # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute internal traffic.
        self.client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout,
                                  pool=connect_timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    def url_for(self, service: str, tail: str, query: str) -> str:
        base = self.services.get(service)
        if base is None:
            raise UnknownService(f"No service named '{service}' is configured for the gateway.", service=service)
        return upstream_url(base, tail, query)

    async def open(self, method: str, url: str, headers: list[tuple[str, str]],
                   body: AsyncIterator[bytes] | None) -> httpx.Response:
        """Send the request (its body streamed from `body`) and return the upstream's answer with
        its body still unread; the caller streams it with `relay` and closes it."""
        request = self.client.build_request(method, url, headers=headers, content=body)
        try:
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("The upstream service did not answer in time.") from exc
        except httpx.HTTPError as exc:
            log.warning("gateway upstream failed", extra={"error": type(exc).__name__, "upstream": url.split("?")[0]})
            raise UpstreamFailed("The upstream service could not be reached.") from exc

    @staticmethod
    async def relay(response: httpx.Response) -> AsyncIterator[bytes]:
        """The upstream's body as it arrives, undecoded (Content-Encoding and -Length stay true)."""
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamBroken(f"upstream ended mid-response: {type(exc).__name__}") from exc
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.client.aclose()
