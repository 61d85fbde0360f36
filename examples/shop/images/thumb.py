"""make-thumbnail: `uploads/<path>.<ext>` created in `images` -> `thumbnails/<path>.png`.

The thumbnail fits in 128 x 128 px and keeps the aspect ratio. It is written outside the
`uploads/` prefix, so it does not trigger this function again.
"""

import io
import posixpath

from PIL import Image, UnidentifiedImageError

SIZE = 128
SOURCE_PREFIX = "uploads/"
TARGET_PREFIX = "thumbnails/"


def thumbnail_key(key):
    rel = key[len(SOURCE_PREFIX):] if key.startswith(SOURCE_PREFIX) else posixpath.basename(key)
    stem, _ext = posixpath.splitext(rel)
    return f"{TARGET_PREFIX}{stem or rel}.png"


def make_thumbnail(data):
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        image.thumbnail((SIZE, SIZE))
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()


def handler(event, context):
    key = event.get("key") or ""
    if event.get("action") != "created" or not key.startswith(SOURCE_PREFIX) or key.endswith("/"):
        return
    images = context.resources["images"]
    data = images.get(key)
    if data is None:  # deleted again before we got to it
        return
    target = thumbnail_key(key)
    try:
        thumb = make_thumbnail(data)
    except (UnidentifiedImageError, OSError) as exc:  # not an image: retrying will not help
        print(f"skip {key}: not a readable image ({exc})")
        return
    images.put(target, thumb, content_type="image/png")
    print(f"thumbnail {key} -> {target}")
