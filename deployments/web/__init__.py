"""The dock's browser pages, served by `lwdock api`: the upload page (``/upload``) and the index (``/``)."""

from deployments.web.upload import upload_router

__all__ = ["upload_router"]
