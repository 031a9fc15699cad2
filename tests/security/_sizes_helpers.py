"""Helpers for issue 15 items 6 and 7: the walk of request schemas for unbounded fields."""

from __future__ import annotations

from typing import Any

# Strings whose length is bounded by what they are: an enum or constant, a file part (bounded by the
# upload limit), a date or date-time (pydantic reads a fixed-size form).
_BOUNDED_FORMATS = {"binary", "date", "date-time"}


def unbounded_fields(openapi: dict[str, Any]) -> list[str]:
    """Every place in a request body (JSON or form) that takes text, a list or a map without a bound."""
    components = openapi["components"]["schemas"]
    problems: list[str] = []

    def walk(node: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                walk(components[name], name, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, where, seen)
        kind = node.get("type")
        if kind == "string" and not ({"enum", "const", "contentMediaType"} & node.keys()) \
                and node.get("format") not in _BOUNDED_FORMATS and "maxLength" not in node:
            problems.append(f"{where}: text without maxLength")
        if kind == "array":
            if "maxItems" not in node:
                problems.append(f"{where}: list without maxItems")
            walk(node.get("items", {}), f"{where}[]", seen)
        if kind == "object":
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                if "maxProperties" not in node:
                    problems.append(f"{where}: map without maxProperties")
                keys = node.get("propertyNames", {})
                if "maxLength" not in keys and "enum" not in keys:
                    problems.append(f"{where}: map keys without maxLength")
                walk(extra, f"{where}{{}}", seen)
            for name, sub in node.get("properties", {}).items():
                walk(sub, f"{where}.{name}", seen)

    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content.get("schema", {}), f"{method.upper()} {path} body", frozenset())
    return sorted(set(problems))


# --- item 7: raw HTTP/1.1 against a real `kycflow serve` --------------------------------------------

def raw_request(base: str, head: bytes, *, timeout: float = 10.0) -> tuple[int | None, dict[str, str], bytes]:
    """Send a request head as bytes and read the answer until the server closes or the timeout;
    (status, headers, body); status None when nothing came back in time."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(head)
        return _read_answer(sock)


def _read_answer(sock: Any) -> tuple[int | None, dict[str, str], bytes]:
    data = b""
    try:
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    if b"\r\n\r\n" not in data:
        return None, {}, data
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value.strip())
    return False


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
