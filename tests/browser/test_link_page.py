"""The city's link page tells what is true now: connected while the hub answers, "silent
since" the last contact once it stops (the stored state is not aged by itself), no red
"last error: none", the oldest unsent record with its age, the counters tucked away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sync.outbox import Outbox
from tests.browser.conftest import LiveConsole
from tests.browser.test_console import log_in


def test_link_state_is_derived_from_the_last_contact(page: Any, live_console: LiveConsole) -> None:
    outbox = Outbox(live_console.engine)
    now = datetime.now(UTC)
    outbox.set_state("connected", last_contact_at=now, last_push_at=now)
    log_in(page, live_console, "leader")
    page.goto(f"{live_console.url}/link")
    assert page.locator("#link-state").inner_text() == "已连接"
    assert page.locator("#last-error").count() == 0  # no "last error: none" in red
    assert not page.locator("#link-technical dl").is_visible()  # epoch, cursor folded away

    # The city stops hearing from the hub: its row still says "connected".
    stopped = now - timedelta(minutes=7)
    outbox.set_state("connected", last_contact_at=stopped)
    page.goto(f"{live_console.url}/link?lang=en")
    shown = page.locator("#link-state").inner_text()
    local = stopped.astimezone(live_console.ctx.zone).strftime("%Y-%m-%d %H:%M")
    assert shown == f"silent · since {local}"
    assert "Beijing time (UTC+8)" in page.locator("#zone").inner_text()
    assert page.locator("#oldest-unsent").inner_text() == "nothing waiting"
