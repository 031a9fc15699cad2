"""`.env.example` documents every setting, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings


def test_env_example_lists_every_setting():
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    fields = {name.upper() for name in Settings.model_fields}
    assert listed == fields, {"missing": fields - listed, "unknown": listed - fields}
    for name in listed:  # each one has a comment right above it (possibly shared by a group)
        assert re.search(rf"#[^\n]*\n(?:[A-Z_]+=[^\n]*\n)*{name}=", text), name
