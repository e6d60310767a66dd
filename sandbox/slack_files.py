"""Slack's file uploads, for the Web API double (sandbox/slack_api.py): written from Slack's documentation.

An upload takes three calls, as Slack documents them. ``files.getUploadURLExternal``
(``filename`` and ``length`` required, ``alt_txt`` at most 1,000 characters) answers with
an upload URL and a file id. The bytes are POSTed to that URL, raw or multipart; Slack
answers 200 when it has them. ``files.completeUploadExternal`` (``files``: a JSON list of
``{id, title}``; ``channel_id`` or ``channels``, comma-separated channel or user ids;
``initial_comment``; ``thread_ts`` with one channel only) shares the files, each channel
getting a message that carries them, or keeps them private when no channel is named.
Completing a file that was never uploaded, or whose bytes are not the length announced,
is refused; so is a Block Kit image naming a ``slack_file`` that is not an uploaded image.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

MAX_ALT_TXT = 1000  # Slack: alt_txt_too_large beyond it
MAX_SNIPPET = 1024 * 1024  # Slack: snippet_too_large beyond 1 MB
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
UPLOAD_PATH = "upload/v1/"


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int  # as announced to files.getUploadURLExternal
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None  # None until the bytes reach the upload URL
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    completed: bool = False
    initial_comment: str | None = None

    @property
    def mimetype(self) -> str:
        for magic, kind in SIGNATURES:
            if self.data is not None and self.data.startswith(magic):
                return kind
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    @property
    def is_image(self) -> bool:
        return self.mimetype.startswith("image/")

    def shown(self) -> dict:
        """The file object as a message carries it."""
        return {
            "id": self.id, "name": self.filename, "title": self.title or self.filename, "mimetype": self.mimetype,
            "filetype": self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "binary",
            "size": len(self.data or b""), "alt_txt": self.alt_txt, "is_public": bool(self.channels),
        }  # fmt: skip


def _json_list(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _slack_files(node: Any) -> list[dict]:
    """Every ``slack_file`` object in blocks (image blocks, and image elements of context blocks)."""
    if isinstance(node, list):
        return [f for item in node for f in _slack_files(item)]
    if isinstance(node, dict):
        found = [node["slack_file"]] if isinstance(node.get("slack_file"), dict) else []
        return found + [f for key, value in node.items() if key != "slack_file" for f in _slack_files(value)]
    return []


class FilesAPI:
    """The files part of ``SlackAPI``: mixed into it, sharing its lock, calls, failures and messages."""

    def _init_files(self) -> None:
        self.uploads: dict[str, UploadedFile] = {}
        self._file_ids = itertools.count(1)
        self._here = ""  # the double's own base URL as the caller reached it, for upload URLs

    # -- for tests -------------------------------------------------------------------

    @property
    def files(self) -> list[UploadedFile]:
        """Every file whose upload was completed, oldest first."""
        return [f for f in self.uploads.values() if f.completed]

    def file_bytes(self, file_id: str) -> bytes:
        return self.uploads[file_id].data or b""

    def image_file(self, file_id: str) -> UploadedFile | None:
        """The completed upload ``file_id`` if it is an image (what an image block may show)."""
        f = self.uploads.get(file_id)
        return f if f is not None and f.completed and f.is_image else None

    # -- checks used by the message and view methods ----------------------------------

    def _file_problem(self, blocks: Any) -> str | None:
        blocks = _json_list(blocks)
        for raw in blocks if isinstance(blocks, list) else []:
            if isinstance(raw, dict) and raw.get("type") == "image" and ("image_url" in raw) == ("slack_file" in raw):
                return "an image block needs exactly one of image_url and slack_file"
        for ref in _slack_files(blocks):
            if "id" in ref and self.image_file(str(ref["id"])) is None:
                return f"slack_file {ref['id']!r} is not an uploaded image"
            if "id" not in ref and "url" not in ref:
                return "slack_file needs an id or a url"
        return None

    # -- the upload URL ------------------------------------------------------------------

    def _upload_url(self, file_id: str) -> str:
        return f"{self._here}{UPLOAD_PATH}{file_id}"

    def _receive_upload(self, request: Request) -> Response:
        """A POST of a file's bytes to its upload URL: raw, or multipart with the file as its one part."""
        file_id = request.path.rsplit("/", 1)[-1]
        if request.mimetype == "multipart/form-data":
            parts = list(request.files.values())
            data = parts[0].read() if parts else b""
        else:
            data = request.get_data(parse_form_data=False)  # the raw bytes, whatever Content-Type says
        with self._lock:
            self.calls.append(self._call("upload", {"file_id": file_id, "length": len(data)}))
            failure = self._take_failure("upload")
            if failure is not None:
                status, retry_after, _ = failure
                return Response("rate_limited" if status == 429 else "internal_error", status=status, headers={"Retry-After": str(int(retry_after))} if retry_after else {})
            upload = self.uploads.get(file_id)
            if request.method != "POST" or upload is None or upload.completed:
                return Response("invalid_upload_url", status=404)
            upload.data = data
        return Response(f"OK - {len(data)}", mimetype="text/plain")

    # -- the methods -----------------------------------------------------------------

    def api_files_getUploadURLExternal(self, args: dict) -> dict:
        filename, length = str(args.get("filename") or ""), args.get("length")
        try:
            length = int(length) if length not in (None, "") else 0
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not filename or length <= 0:
            return {"ok": False, "error": "missing_argument"}  # Slack: "typically only occurs when the length provided is 0"
        alt_txt = args.get("alt_txt") or None
        if alt_txt is not None and len(str(alt_txt)) > MAX_ALT_TXT:
            return {"ok": False, "error": "alt_txt_too_large"}
        snippet_type = args.get("snippet_type") or None
        if snippet_type is not None and length > MAX_SNIPPET:
            return {"ok": False, "error": "snippet_too_large"}
        file_id = f"F{next(self._file_ids):010d}"
        self.uploads[file_id] = UploadedFile(file_id, filename, length, alt_txt and str(alt_txt), snippet_type and str(snippet_type))
        return {"ok": True, "upload_url": self._upload_url(file_id), "file_id": file_id}

    def api_files_completeUploadExternal(self, args: dict) -> dict:
        wanted = _json_list(args.get("files"))
        if not isinstance(wanted, list) or not wanted or not all(isinstance(f, dict) and f.get("id") for f in wanted):
            return {"ok": False, "error": "invalid_arguments"}
        uploads = []
        for f in wanted:
            upload = self.uploads.get(str(f["id"]))
            if upload is None or upload.data is None or upload.completed:
                return {"ok": False, "error": "file_not_found"}  # Slack: "Could not find the file from the upload ticket."
            if len(upload.data) != upload.length:
                self.invalid.append(("files.completeUploadExternal", f"{upload.id}: {len(upload.data)} bytes uploaded, {upload.length} announced"))
                return {"ok": False, "error": "file_update_failed"}
            uploads.append((upload, f.get("title")))
        channels = [c for c in str(args.get("channels") or "").split(",") if c] or ([args["channel_id"]] if args.get("channel_id") else [])
        if any(not str(c).startswith(("C", "D", "G", "U", "W")) for c in channels):
            return {"ok": False, "error": "invalid_channel"}
        thread_ts = args.get("thread_ts") or None
        if thread_ts and len(channels) > 1:
            return {"ok": False, "error": "invalid_arguments"}  # Slack: only one channel with thread_ts
        channels = [self._dm_channel(c) if c.startswith(("U", "W")) else c for c in channels]
        for upload, title in uploads:
            upload.title, upload.channels, upload.completed = title or upload.filename, channels, True
            upload.initial_comment = args.get("initial_comment") or None
        for channel in channels:
            message = self._message_with_files(channel, args.get("initial_comment") or "", [u.shown() for u, _ in uploads], thread_ts)
            self.messages[(channel, message.ts)] = message
        return {"ok": True, "files": [{"id": u.id, "title": u.title} for u, _ in uploads]}
