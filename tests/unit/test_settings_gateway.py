"""GATEWAY_SERVICES: names that fit a URL path segment, http(s) base URLs without query or fragment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


@pytest.mark.parametrize("services", [
    {"Echo": "http://upstream"}, {"-echo": "http://upstream"}, {"e" * 64: "http://upstream"}, {"": "http://upstream"},
    {"echo": "ftp://upstream"}, {"echo": "http://upstream/a?q=1"}, {"echo": "http://upstream/#top"},
    {"echo": "http:///path"}, {"echo": "http://up stream"}, {"echo": "http://upstream\n"},
])
def test_a_bad_service_name_or_url_is_refused_naming_the_setting(services):
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, gateway_services=services)
    assert err.value.errors()[0]["loc"][0] == "gateway_services"


def test_good_services_are_kept_as_given():
    services = {"echo": "http://upstream", "e_2-x": "https://upstream:8443/base/path", "a" * 63: "http://h/"}
    assert Settings(_env_file=None, gateway_services=services).gateway_services == services
