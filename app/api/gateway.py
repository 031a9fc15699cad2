"""`ANY /gateway/{service}/{path}`: a streaming reverse proxy to the upstreams of GATEWAY_SERVICES,
for staff (`gateway:use`) and API keys with the `gateway` scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from app.api.deps import ClientDep, ContainerDep, GatewayCaller
from app.api.middleware import body_limit
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import error_responses
from app.domain import gateway as g
from app.services.gateway import GatewayService

router = APIRouter(tags=["Gateway"], route_class=ExactJsonRoute)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ERRORS = error_responses(
    g.GatewayPathRefused, (401, "not_authenticated", "Send a bearer access token or an X-API-Key."),
    (401, "invalid_api_key", "The API key is invalid or revoked."),
    (403, "insufficient_role", "Your role may not do this."),
    (403, "insufficient_scope", "This API key lacks the 'gateway' scope this route needs."),
    g.UnknownService, 413, 429, g.UpstreamFailed, g.UpstreamTimeout)


def _tail(request: Request, service: str, path: str) -> str:
    """The path after `/gateway/{service}/` exactly as sent (percent-encoding kept, so an encoded
    slash stays one); the decoded path, re-encoded, when the raw one is not available."""
    raw: bytes = request.scope.get("raw_path") or b""
    marker = f"/gateway/{service}/".encode()
    at = raw.find(marker)
    if at < 0:
        return quote(path, safe="/!$&'()*+,;=:@-._~")
    return raw[at + len(marker):].split(b"?", 1)[0].decode("latin-1")


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "chunked" in request.headers.get("transfer-encoding", "")


async def _body(request: Request) -> AsyncIterator[bytes] | None:
    """The request's body as a stream, its first chunk already read: reading it is where the body
    limit refuses a declared oversize (413), so such a request never reaches the upstream."""
    if not _has_body(request):
        return None
    stream = request.stream()
    first = await anext(stream, b"")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in stream:
            yield chunk
    return body()


@body_limit("gateway")  # streamed through, never held: its own (large) limit
async def forward(service: str, path: str, request: Request, _: GatewayCaller, c: ContainerDep,
                  client: ClientDep) -> StreamingResponse:
    """Forwards method, query, headers and body; streams the upstream's answer back with its status.
    Redirects come back as sent (never followed); hop-by-hop headers and, unless
    GATEWAY_FORWARD_AUTH, the caller's credentials stay here."""
    gateway: GatewayService = c.gateway
    url = gateway.url_for(service, _tail(request, service, path), request.scope["query_string"].decode("latin-1"))
    headers = g.request_headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                                forward_auth=c.settings.gateway_forward_auth)
    headers += [("x-forwarded-for", client.ip_address or ""), ("x-forwarded-proto", request.url.scheme),
                ("x-forwarded-host", request.headers.get("host", ""))]
    upstream = await gateway.open(request.method, url, headers, await _body(request))
    response = StreamingResponse(gateway.relay(upstream), status_code=upstream.status_code,
                                 background=BackgroundTask(upstream.aclose))
    response.raw_headers = g.response_headers(upstream.headers.raw)
    return response


for _method in METHODS:  # one operation per method: generated clients need unique operation ids
    router.add_api_route("/gateway/{service}/{path:path}", forward, methods=[_method], name=f"gateway_{_method.lower()}",
                         summary=f"Forward a {_method} request to an upstream service", responses=ERRORS,
                         response_class=StreamingResponse)
