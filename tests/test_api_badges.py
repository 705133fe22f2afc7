"""GET /badge/{name}.svg: status and uptime badges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

from api_helpers import fake_daemon, history, serve

from prober.api.badges import format_percent, text_width

CONFIG = """
version: 1
checks:
  - {name: api.health, type: http, url: "https://api.example.com/health"}
  - {name: flaky, type: http, url: "https://flaky.example.com/"}
"""


def texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [node.text or "" for node in root.iter("{http://www.w3.org/2000/svg}text")]


async def test_status_and_uptime_badges_are_valid_svg_with_the_right_words(tmp_path: Path) -> None:
    # flaky: 40 results 30 minutes apart, one in four down, all inside the last 24 hours
    results = [*history("api.health", "uuuu"), *history("flaky", "uuud" * 10, step=timedelta(minutes=30))]
    async with fake_daemon(tmp_path, CONFIG, results) as daemon, serve(daemon) as client:
        status = await client.get("/badge/api.health.svg")
        assert status.status == 200 and status.headers["Content-Type"].startswith("image/svg+xml")
        assert texts(await status.text())[1:4:2] == ["api.health", "up"]
        flaky = await (await client.get("/badge/flaky.svg")).text()
        assert "down" in texts(flaky) and "#e05d44" in flaky
        week = await (await client.get("/badge/flaky.svg?window=7d")).text()
        assert texts(week)[1:4:2] == ["flaky 7d", "75%"]
        day = await (await client.get("/badge/flaky.svg?window=24h&label=Flaky%20API")).text()
        assert texts(day)[1:4:2] == ["Flaky API", "75%"]


async def test_unknown_check_bad_window_and_markup_in_the_label(tmp_path: Path) -> None:
    async with fake_daemon(tmp_path, CONFIG, history("api.health", "u")) as daemon, serve(daemon) as client:
        missing = await client.get("/badge/nope.svg")
        assert missing.status == 404 and "unknown check" in texts(await missing.text())
        assert (await client.get("/badge/api.health.svg?window=1y")).status == 400
        hostile = await (await client.get("/badge/api.health.svg?label=<script>x</script>")).text()
        assert "<script>" not in hostile and "&lt;script&gt;" in hostile
        ElementTree.fromstring(hostile)


def test_percent_never_rounds_up_to_100_and_widths_grow_with_text() -> None:
    assert format_percent(99.999) == "99.99%"
    assert format_percent(100.0) == "100%"
    assert format_percent(87.5) == "87.5%"
    assert text_width("mmmm") > text_width("iiii") > 0
