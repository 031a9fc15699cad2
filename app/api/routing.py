"""Request bodies read with their numbers exact.

FastAPI decodes a JSON body with `json.loads`, which turns every number with a fraction into a
float before any model sees it: `100.000000000000001` arrived as `100.0`, a valid amount, where
the client sent one with 15 decimal places (and `99999999999.999999` as `100000000000.0`). Read
as `Decimal`, such an amount keeps its digits and is refused by the field's `decimal_places`;
float fields still accept a `Decimal` (pydantic converts it), so only money and rates change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class ExactJsonRoute(APIRoute):
    """Every router's `route_class` (a test walks the app): its handler sees `ExactJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact
