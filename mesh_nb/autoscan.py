"""The post-cell autoscan: every new or changed DataFrame in the notebook is checked for PII.

After each cell, frames in the user namespace are fingerprinted (cheap: identity, shape,
dtypes, a small sample); unchanged frames cost nothing. Changed frames are scanned in a
background thread, so a big frame never blocks the cell; an alert appears in the cell's output
when the scan is done, and a ``pii.detected`` entry (frame, columns, entity types, counts —
never a value) goes to each bound product's ledger.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # mesh_nb.pii loads pandas: only once a frame is there to scan
    from .pii import ScanReport
    from .pii.alerts import Alert


def _is_frame(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.split(".")[0] in ("pandas", "polars")


class AutoScan:
    """Scans new or changed frames after each cell; ``session()`` gives the bound session."""

    def __init__(self, shell, session: Callable[[], Any], *, sample: int = 200):
        self.shell, self.session, self.sample = shell, session, sample
        self.fingerprints: dict[str, str] = {}
        self.reports: dict[str, ScanReport] = {}
        self.alerts: list[Alert] = []
        self._pending: list[Future] = []
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mesh-nb-scan")

    # -- the hook -------------------------------------------------------------------------------

    def changed_frames(self) -> dict[str, Any]:
        """Frames in the namespace that are new or changed since the last look."""
        frames = {name: value for name, value in list(self.shell.user_ns.items())
                  if not name.startswith("_") and _is_frame(value)}
        for gone in set(self.fingerprints) - set(frames):
            del self.fingerprints[gone]
        if not frames:
            return {}
        from .pii import frame_fingerprint

        changed = {}
        for name, df in frames.items():
            fp = frame_fingerprint(df)
            if self.fingerprints.get(name) != fp:
                self.fingerprints[name] = fp
                changed[name] = df
        return changed

    def post_run_cell(self, result=None) -> None:
        """IPython ``post_run_cell`` handler: start background scans of changed frames."""
        changed = self.changed_frames()
        if not changed:
            return
        from .widgets.alert import ScanPanel

        panel = ScanPanel(sorted(changed))
        panel.show()
        session = self.session()
        self._pending.append(self._executor.submit(self._scan_all, changed, session, panel))

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` each time a background scan has finished (e.g. the lab's comm)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _scan_all(self, frames: dict[str, Any], session, panel) -> list[Alert]:
        from .pii import scan  # loaded by changed_frames, on the shell's thread

        found: list[Alert] = []
        for name, df in frames.items():
            report = scan(df, sample=self.sample)
            found += self.record(name, report, session)
        panel.done(found)
        for listener in list(self._listeners):
            listener()
        return found

    def record(self, name: str, report: ScanReport, session) -> list[Alert]:
        """Keep the report, compute alerts, write ``pii.detected`` to the bound ledgers."""
        from .pii.alerts import alerts_for

        found = alerts_for(report, name, session)
        with self._lock:
            self.reports[name] = report
            self.alerts += found
        labeled = report.entities()
        if session is not None and not session.ended and labeled:
            counts: dict[str, int] = {}
            for entity in labeled.values():
                counts[entity] = counts.get(entity, 0) + 1
            session.record("pii.detected", {"frame": name, "columns": sorted(labeled),
                                            "entity_types": counts, "rows": report.rows})
        return found

    def wait(self, timeout: float | None = 60) -> None:
        """Block until every started scan is done (tests, and before a kernel shuts down)."""
        pending, self._pending = self._pending, []
        done, not_done = wait(pending, timeout=timeout)
        for f in done:
            f.result()  # re-raise a scan's error here rather than lose it
        self._pending += list(not_done)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
