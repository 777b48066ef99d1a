"""Progress on a terminal for the command line's long runs (rich's live progress display).

A population run first waits for the server's Bulk Data ``$export`` (minutes on a large server):
a spinner shows the time waited and the server's last ``X-Progress`` text. Screening then shows a
bar with done/total, the rate and the time elapsed. Used only when stderr is a terminal; logs and
pipes get :class:`service.population.Progress` lines instead.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """A :class:`service.population.Reporter` drawn by rich on ``console`` (stderr by default)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
        )
        self._wait: TaskID | None = None
        self._screen: TaskID | None = None
        self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def note(self, text: str) -> None:
        self.console.print(f"ketamine-screen: {text}", highlight=False)

    def waiting(self, status: str) -> None:
        self._ensure_started()
        description = f"$export: {status}"
        if self._wait is None:
            self._wait = self._progress.add_task(description, total=None, rate="")
        else:
            self._progress.update(self._wait, description=description)

    def start(self, total: int | None) -> None:
        self._ensure_started()
        if self._wait is not None:
            self._progress.update(self._wait, description="$export: done", total=1, completed=1)
        self._screen = self._progress.add_task("screening", total=total, rate="")

    def tick(self) -> None:
        if self._screen is None:
            self.start(None)
        assert self._screen is not None  # noqa: S101 - set by start()
        self._progress.advance(self._screen)
        task = self._progress.tasks[-1]
        if task.elapsed:
            self._progress.update(self._screen, rate=f"{task.completed / task.elapsed:.0f}/s")

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
