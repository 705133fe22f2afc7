#!/opt/prober/bin/python
"""The container HEALTHCHECK: GET /healthz on the address in PROBER_LISTEN; exit 0 when it answers 200.

0.0.0.0 and [::] are reached through loopback. With PROBER_LISTEN=off there is no API to ask, and the check
passes with a note (an agent may run without an API; its liveness is then the process itself).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def target(listen: str) -> str | None:
    if listen.strip().lower() in ("off", "none", ""):
        return None
    host, _, port = listen.strip().rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = target(os.environ.get("PROBER_LISTEN", "0.0.0.0:8080"))
    if url is None:
        print("PROBER_LISTEN is off: no /healthz to ask")
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            print(f"{url}: {response.status}")
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(300).decode('utf-8', 'replace')}")
    except OSError as exc:
        print(f"{url}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
