"""Whether this machine can run the Spark tests (shared by the test modules that need it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def spark_missing() -> str | None:
    """Why Spark cannot run here (no pyspark, no Java), or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'mesh_nb[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no Java on PATH or JAVA_HOME (the Spark engine needs Java 17+)"
    return None
