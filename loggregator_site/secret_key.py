"""SECRET_KEY from a file: generated on first start, the same key on every start after.

The Docker image points SECRET_KEY_FILE at its data volume, so a fresh stack
starts without configuration and every container on that volume shares one
key, which is never in the image nor in a log. A SECRET_KEY in the environment
wins over the file.
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def read_or_create(path: Path) -> str:
    try:
        key = path.read_text().strip() if path.exists() else _create(path)
    except OSError as exc:
        raise ImproperlyConfigured(f"SECRET_KEY_FILE={str(path)!r} cannot be read or created: {exc}") from None
    if not key:
        raise ImproperlyConfigured(f"SECRET_KEY_FILE={str(path)!r} is empty: delete it to have a key generated.")
    return key


def _create(path: Path) -> str:
    key = secrets.token_urlsafe(50)
    # Written in full beside it, then linked into place: when several
    # processes start at once exactly one link succeeds, and all of them
    # read that one key; nobody ever reads a half-written file.
    pending = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{key}\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(pending, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        pending.unlink(missing_ok=True)
    return key
