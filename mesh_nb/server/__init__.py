"""The owner's mesh server (``mesh-nb serve``): analysts reach products only through it.

Needs the ``server`` extra (FastAPI, uvicorn). The analyst's client is :mod:`mesh_nb.remote`
and needs neither. See docs/deploy.md.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750
MAX_BODY = 64 * 1024
"""Largest request body the server takes (bytes)."""

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "MAX_BODY", "create_app", "serve"]


def create_app(mesh_dir: str | Path, **options) -> "FastAPI":
    """The ASGI app for the products under ``mesh_dir`` (see :mod:`mesh_nb.server.app`)."""
    from .app import create_app as _create

    return _create(mesh_dir, **options)


def configure_logging(stream: TextIO | None = None, log_file: str | Path | None = None) -> None:
    """One line per request on ``mesh_nb.server`` (stderr, or ``log_file``); uvicorn's own
    loggers keep only warnings and startup."""
    if log_file:
        from ..files import private_file

        private_file(log_file)
    handler: logging.Handler = (logging.FileHandler(log_file) if log_file
                                else logging.StreamHandler(stream or sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("mesh_nb.server")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def serve(mesh_dir: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          log_file: str | Path | None = None, **options) -> None:
    """Run the server in this process until interrupted (``mesh-nb serve``)."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the server extra is missing
        from ..errors import MeshError

        raise MeshError("the mesh server needs its extra: pip install 'mesh_nb[server]'") \
            from None
    from . import wire

    configure_logging(log_file=log_file)
    app = create_app(mesh_dir, **options)
    # uvicorn's access log would print paths with query strings: ours replaces it.
    # h11's max_incomplete_event_size bounds a request line and headers still arriving; the
    # Guard refuses complete ones past wire.MAX_HEADERS (431).
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None,
                            log_level="warning", http="h11",
                            h11_max_incomplete_event_size=wire.MAX_HEADERS,
                            server_header=False, timeout_keep_alive=30)
    logging.getLogger("mesh_nb.server").info("serving %s on http://%s:%d",
                                             Path(mesh_dir).resolve(), host, port)
    uvicorn.Server(config).run()
