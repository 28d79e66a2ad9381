"""Upload handling for feed files: a file over FEED_MAX_BYTES is not kept anywhere."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest


class FeedSizeLimit(FileUploadHandler):
    """First in the chain: stops passing a file on once it is over FEED_MAX_BYTES.

    Without it Django spools the whole body (513 MiB, say) to a temporary file before the
    view can refuse it. SkipFile makes Django close, and so delete, what the later handlers
    wrote; the rest of that file is read and dropped. The view learns of it from
    `request.oversized_upload`.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = settings.FEED_MAX_BYTES
        if request is not None:
            request.oversized_upload = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            if self.request is not None:
                self.request.oversized_upload = True
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file object
