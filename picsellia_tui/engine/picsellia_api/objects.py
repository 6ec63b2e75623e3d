"""Object storage as the SDK sees it: object names, presigned URLs, staged uploads.

The SDK calls presigned URLs with no auth header, as it would S3, so a URL carries
its own proof: an HMAC (a key of this engine process) over the method, the grant's
public id, the object name, the multipart part and an expiry. A URL is only good
while its run's grant exists, so it dies with the run like the token.

Object names:
- `files/<file uuid>/<filename>`: a file of a version (download only);
- `uploads/<random>/<filename>`: a fresh name from generate_object_name. Uploaded
  bytes go to the blob store at once (hashed while written, no second copy;
  multipart uploads are joined as their parts arrive: multipart.py); the
  grant's folder keeps which blob the name holds until a POST .../modelfiles makes
  it a file of a version.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from picsellia_tui.engine.picsellia_api.store import ApiError
from picsellia_tui.storage.blobs import BlobStore

URL_TTL_S = 3600
MAX_PARTS = 10_000


class Signer:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, method: str, gid: str, obj: str, extra: str, exp: int) -> str:
        msg = f"{method}\n{gid}\n{obj}\n{extra}\n{exp}".encode()
        return hmac.new(self._key, msg, "sha256").hexdigest()

    def url(self, base: str, method: str, gid: str, obj: str, extra: str = "") -> str:
        exp = int(time.time()) + URL_TTL_S
        q = {"g": gid, "e": str(exp), "s": self._mac(method, gid, obj, extra, exp)}
        if extra:
            q["x"] = extra
        return f"{base.rstrip('/')}/_storage/{quote(obj)}?{urlencode(q)}"

    def check(self, method: str, obj: str, query: dict[str, str]) -> str:
        """The grant id the URL was signed for, or ApiError(403)."""
        gid, exp, sig, extra = query.get("g", ""), query.get("e", ""), query.get("s", ""), ""
        extra = query.get("x", "")
        if not exp.isdigit() or int(exp) < time.time():
            raise ApiError(403, "this storage URL has expired or is malformed")
        good = self._mac(method, gid, obj, extra, int(exp))
        if not hmac.compare_digest(good, sig):
            raise ApiError(403, "this storage URL is not signed for this request")
        return gid


def new_upload_name(filename: str) -> str:
    return f"uploads/{secrets.token_hex(12)}/{filename}"


def _key(obj: str) -> str:
    return hashlib.sha256(obj.encode()).hexdigest()


class Staging:
    """Uploaded bytes of one grant, before they become files (or are dropped with
    the grant at the end of the run)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.root

    def object_path(self, obj: str) -> Path:
        if not obj.startswith("uploads/"):
            raise ApiError(400, "only names from generate_object_name can be uploaded to")
        return self._dir() / f"obj-{_key(obj)}"

    def part_path(self, upload_id: str, part: int) -> Path:
        if not (1 <= part <= MAX_PARTS) or not upload_id.isalnum():
            raise ApiError(400, "bad multipart upload id or part number")
        return self._dir() / f"part-{upload_id}-{part:05d}"

    def new_multipart(self) -> str:
        upload_id = secrets.token_hex(16)
        (self._dir() / f"mpu-{upload_id}").write_text("")
        return upload_id

    def has_multipart(self, upload_id: str) -> bool:
        return upload_id.isalnum() and (self._dir() / f"mpu-{upload_id}").is_file()

    def data_path(self, upload_id: str) -> Path:
        """The upload's parts that came in order, one after the other (multipart.py)."""
        return self._dir() / f"mpu-{upload_id}.data"

    def index_path(self, upload_id: str) -> Path:
        """`part offset size` lines: where each of those parts is in the data file."""
        return self._dir() / f"mpu-{upload_id}.index"

    def remove_multipart(self, upload_id: str) -> None:
        for p in self._dir().glob(f"part-{upload_id}-*"):
            p.unlink(missing_ok=True)
        for p in (self.data_path(upload_id), self.index_path(upload_id)):
            p.unlink(missing_ok=True)
        (self._dir() / f"mpu-{upload_id}").unlink(missing_ok=True)

    def put(self, obj: str, src: Any, blobs: BlobStore) -> None:
        """Store an uploaded object's bytes in the blob store; remember its digest."""
        sha, size = blobs.put_stream(src)
        self.hold(obj, sha, size)

    def hold(self, obj: str, sha: str, size: int) -> None:
        """The object now names that blob."""
        ref = self.object_path(obj)
        tmp = ref.with_name(ref.name + ".tmp")
        tmp.write_text(f"{sha} {size}")
        tmp.replace(ref)

    def blob(self, obj: str) -> tuple[str, int] | None:
        """(sha256, size) of an uploaded object, or None."""
        try:
            sha, size = self.object_path(obj).read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return sha, int(size)
