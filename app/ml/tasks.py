"""The units of work the ML pool runs: bytes in, plain results out.

Each task takes the loaded models first, then decodes its own inputs, so images cross
the process boundary as the compact bytes the client sent, never as pixel arrays.
The same functions run in the pool's worker processes, in threads (tests), and
in-process for `make bench`'s bare model timings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain.errors import InvalidInput
from app.ml.images import MAX_BYTES, MAX_PIXELS, decode_frame, decode_image
from app.ml.registry import ModelRegistry as Models


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    max_frame_bytes: int = 2 * 1024 * 1024
    # A burst is decoded and held at once (up to MAX_FRAMES): 1080p at most per frame keeps a
    # full burst near 370 MB, while a 1 MB JPEG could otherwise unpack to 40 megapixels each.
    # Face Mesh works at 640 px, so larger frames add nothing.
    max_frame_pixels: int = 1920 * 1080


def read_document(models: Models, data: bytes, document_type: str | None, limits: Limits) -> Any:
    """OCR, classification and field parsing of one document (a DocumentReading)."""
    image = decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)  # refuse before any model
    return models.get("ocr_extractor").read(image, document_type)


def render_page(models: Models, data: bytes, limits: Limits) -> bytes:
    """A stored PDF's first page as PNG bytes: the pixels the checks read, shown to an auditor in
    place of the PDF (which may carry scripts: a PNG of its page cannot)."""
    import cv2

    image = decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise InvalidInput("The page could not be rendered.", code="invalid_image")
    return bytes(png.tobytes())


def match_faces(models: Models, document: bytes, selfie: bytes, limits: Limits) -> Any:
    """The face on the document against the selfie (a FaceMatch)."""
    doc = decode_image(document, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
    face = decode_image(selfie, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, allow_pdf=False)
    return models.get("face_matcher").compare(doc, face)


def selfie_faces(models: Models, selfie: bytes, document: bytes | None, limits: Limits) -> tuple[Any, Any]:
    """`(embedding, match)`: the selfie's face embedding (None without a face) for the duplicate search and,
    given the document, the face match against it (a FaceMatch; the NoFaceDetected message when a face is
    missing; None without a document). One detection of the selfie serves both checks."""
    from app.domain.errors import NoFaceDetected

    matcher, vector = models.get("face_matcher"), None
    try:
        vector = matcher.embed_largest(decode_image(selfie, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels,
                                                    allow_pdf=False), "selfie")
        if document is None:
            return vector, None
        doc = decode_image(document, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
        return vector, matcher.compare_embeddings(matcher.embed_largest(doc, "ID document"), vector)
    except NoFaceDetected as exc:
        return vector, exc.message


def decode_frames(frames: list[str], limits: Limits, *, start: int = 0) -> list[Any]:
    """`start`: the global index of frames[0], so an error names the frame the client sent."""
    images = []
    for i, frame in enumerate(frames, start):
        try:
            images.append(decode_frame(frame, max_bytes=limits.max_frame_bytes,
                                       max_pixels=min(limits.max_pixels, limits.max_frame_pixels)))
        except InvalidInput as exc:
            exc.message = f"Frame {i}: {exc.message}"  # say which frame, the client sent dozens
            raise
    return images


def analyze_frames(
    models: Models, frames: list[str], limits: Limits, *, initial_blink_count: int = 0,
    min_frames: int | None = None, actions: list[str] | None = None,
) -> tuple[Any, tuple[bool, str] | None]:
    """Blinks, head turns and identity across frames; with `actions`, also the challenge verdict.
    All in one worker; `split_frames` + `measure_frames` + `merge_frames` spread it over several."""
    analyzer = models.get("liveness_detector")
    analyzer.check_frame_count(len(frames), min_frames)  # before decoding anything
    analysis = analyzer.analyze(decode_frames(frames, limits), initial_blink_count, min_frames=min_frames)
    verdict = analyzer.evaluate_challenge(analysis, actions) if actions else None
    return analysis, verdict


def split_frames(count: int, parts: int, *, min_part: int = 4) -> list[tuple[int, int]]:
    """[start, stop) ranges covering `count` frames in up to `parts` runs of >= `min_part`;
    consecutive runs share one frame, so every frame-to-frame jump lies inside one run."""
    parts = max(1, min(parts, (count - 1) // min_part))
    bounds = [round(k * (count - 1) / parts) for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1] + 1) for k in range(parts)]


def measure_frames(models: Models, frames: list[str], limits: Limits, *, start: int, first: bool,
                   last: bool) -> Any:
    """One run of a liveness sequence (a FrameBatch): landmarks, thumbnails, embeddings."""
    analyzer = models.get("liveness_detector")
    return analyzer.measure(decode_frames(frames, limits, start=start), start=start, first=first, last=last)


def merge_frames(
    models: Models, batches: list[Any], frames: list[str], limits: Limits, *, initial_blink_count: int = 0,
    min_frames: int | None = None, actions: list[str] | None = None,
) -> tuple[Any, tuple[bool, str] | None]:
    """The rules over measured runs: as `analyze_frames` returns. `frames` is only decoded
    for an embedding no run made (a jump across two runs' boundary with no face on it)."""
    analyzer = models.get("liveness_detector")

    def frame_at(index: int) -> Any:
        return decode_frames([frames[index]], limits, start=index)[0]

    analysis = analyzer.merge(batches, initial_blink_count, min_frames=min_frames, frame_at=frame_at)
    verdict = analyzer.evaluate_challenge(analysis, actions) if actions else None
    return analysis, verdict


def check_selfie(models: Models, data: bytes, limits: Limits) -> Any:
    """Face found, large, sharp and well exposed enough to be matched later (a SelfieQuality)."""
    from app.ml.faces import assess_selfie

    detector = models.get("face_detector")
    image = decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, allow_pdf=False)
    return assess_selfie(image, detector)
