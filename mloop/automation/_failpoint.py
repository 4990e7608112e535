"""Named crash points for the restart-safety tests: ``MLOOP_AUTOMATION_FAILPOINT=<name>`` makes the process end
at once there, as kill -9 would (no cleanup, no commit of an open transaction)."""

import os


def failpoint(name: str) -> None:
    """End the process now when the failpoint ``name`` is armed (a test does this); otherwise nothing."""
    if os.environ.get("MLOOP_AUTOMATION_FAILPOINT") == name:
        os._exit(137)
