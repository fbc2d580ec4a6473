"""Open any recording the product understands, by its magic bytes or its extension."""

from __future__ import annotations

import os
from pathlib import Path

from spinecoach.errors import DataFormatError
from spinecoach.recording import interchange
from spinecoach.recording.model import Recording


def load_recording(path: str | os.PathLike[str], notes: list[str] | None = None) -> Recording:
    """Load a native recording (``.screc``) or an interchange CSV into memory.

    The native format is recognised by its magic bytes whatever the file is called; anything
    else whose name ends in ``.csv`` or whose first line starts with ``Time (s)`` is read as
    interchange CSV. Remarks (ignored columns, a torn tail) are appended to ``notes``.
    Raises :class:`DataFormatError` (one line naming what is wrong) for anything else.
    """
    from spinecoach.recording import native  # native imports this module's siblings only

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such recording; check the path") from None
    except IsADirectoryError:
        raise DataFormatError(f"{path}: is a directory; expected a recording file") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read ({error.strerror})") from None
    if head.startswith(native.MAGIC):
        return native.read_native(path, notes=notes)
    text_head = head.lstrip(b"\xef\xbb\xbf")
    if path.suffix.lower() == ".csv" or text_head.startswith(interchange.TIME_COLUMN.encode()):
        return interchange.read_csv(path, notes=notes)
    raise DataFormatError(
        f"{path}: not a recording; expected a native .screc file (starting with "
        f"{native.MAGIC!r}) or an interchange CSV whose header starts with "
        f"{interchange.TIME_COLUMN!r}"
    )
