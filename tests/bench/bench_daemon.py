"""Benchmark: `prober run` against Prometheus + blackbox_exporter, same targets, same rate, one run.

Run on demand (pytest does not collect it; needs root or the Debian packages already installed):

    python tests/bench/bench_daemon.py                     # 200 targets every 1 s, 40 s window
    python tests/bench/bench_daemon.py -k 100 --window 30

What it does, all on 127.0.0.1 and killed at the end:
  1. starts nginx (one worker, `return 200`) as the target of every check;
  2. the peer: prometheus-blackbox-exporter and Prometheus scraping it every 1 s for K targets (relabelled to
     /probe?module=http_2xx&target=...; blackbox opens a fresh connection per probe), TSDB in a temp dir;
     after a warm-up, both processes' CPU (utime + stime from /proc/PID/stat) over the window, and the
     probes and samples Prometheus ingested in it (from its own counters);
  3. prober: `prober run` on the same K URLs with `schedule: every 1s` (fresh connection each, every result
     committed with synchronous=FULL, alerts fed, the API listening), its CPU over the same window, and the
     results it committed (prober_store_results_total on /metrics).
Prints both CPU figures, the work each did, CPU per check and the ratio (target in docs/performance.md: <= 0.5).
nginx's own CPU is counted for neither. The machine is shared: read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

GOAL = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def proc_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    return sum(proc_times(pid))


def need(executable: str, package: str) -> str:
    found = shutil.which(executable)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, stdout=subprocess.DEVNULL)
        found = shutil.which(executable)
    if not found:
        sys.exit(f"{executable} is not installed (apt-get install {package})")
    return found


class Processes:
    """Everything this benchmark starts, so that everything is stopped whatever happens."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def start_nginx(procs: Processes, tmp: Path, port: int) -> None:
    nginx = need("nginx", "nginx")
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""
    )
    procs.start([nginx, "-c", str(conf), "-p", str(tmp), "-e", f"{tmp}/nginx-error.log"])
    wait_http(f"http://127.0.0.1:{port}/")


def target_urls(port: int, count: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/t/{index}" for index in range(count)]


def prom_counters(port: int) -> tuple[float, float]:
    """(scrapes, samples appended) from Prometheus's own /metrics: the interval-length summary counts one per
    scrape after a target's first, the head counts every sample stored."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    scrapes = samples = 0.0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("prometheus_target_interval_length_seconds_count"):
            scrapes += float(value)
        elif name.startswith("prometheus_tsdb_head_samples_appended_total"):
            samples += float(value)
    return scrapes, samples


def prom_query(port: int, query: str) -> float:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.load(response)
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def bench_peer(procs: Processes, tmp: Path, urls: list[str], warmup: float, window: float) -> dict[str, float]:
    blackbox = need("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    prometheus = need("prometheus", "prometheus")
    bb_port, prom_port = free_port(), free_port()
    (tmp / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 900ms\n")
    bb = procs.start(
        [
            blackbox,
            f"--config.file={tmp}/blackbox.yml",
            f"--web.listen-address=127.0.0.1:{bb_port}",
            "--log.level=error",
        ]
    )
    targets = json.dumps(urls)
    (tmp / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1m
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {{module: [http_2xx]}}
    static_configs:
      - targets: {targets}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "127.0.0.1:{bb_port}"}}
"""
    )
    prom = procs.start(
        [
            prometheus,
            f"--config.file={tmp}/prometheus.yml",
            f"--storage.tsdb.path={tmp}/tsdb",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=error",
        ]
    )
    wait_http(f"http://127.0.0.1:{bb_port}/")
    wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
    time.sleep(warmup)
    scrapes0, samples0 = prom_counters(prom_port)
    cpu0 = proc_cpu(bb.pid), proc_cpu(prom.pid)
    time.sleep(window)
    cpu1 = proc_cpu(bb.pid), proc_cpu(prom.pid)
    scrapes1, samples1 = prom_counters(prom_port)
    up = prom_query(prom_port, 'sum(probe_success{job="blackbox"})')
    procs.stop(prom)
    procs.stop(bb)
    return {
        "blackbox_cpu": cpu1[0] - cpu0[0],
        "prometheus_cpu": cpu1[1] - cpu0[1],
        "scrapes": scrapes1 - scrapes0,
        "samples": samples1 - samples0,
        "probe_success_now": up,
    }


def store_counters(port: int) -> tuple[float, float, float]:
    """(results committed, scheduler runs, transactions committed) from prober's own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {"prober_store_results_total": 0.0, "prober_scheduler_runs_total": 0.0, "prober_store_commits_total": 0.0}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return tuple(values.values())  # type: ignore[return-value]


def bench_prober(
    procs: Processes,
    tmp: Path,
    urls: list[str],
    warmup: float,
    window: float,
    extra: Sequence[str],
    profile: str | None = None,
    profile_args: Sequence[str] = (),
    source: str | None = None,
) -> dict[str, float]:
    checks = tmp / "checks"
    checks.mkdir()
    lines = ["defaults: {schedule: every 1s, timeout: 900ms}", "checks:"]
    lines += [f"  - {{name: t-{index}, type: http, url: '{url}'}}" for index, url in enumerate(urls)]
    (checks / "bench.yaml").write_text("\n".join(lines) + "\n")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=source or str(Path(__file__).resolve().parents[2]))
    log = (tmp / "prober.log").open("wb")
    proc = procs.start(
        [sys.executable, "-m", "prober", "run", str(checks), "--db", f"{tmp}/prober.db", "--listen",
         f"127.0.0.1:{port}", "--log-level", "warning", *extra],
        env=env,
        stderr=log,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/metrics")
    time.sleep(warmup)
    results0, runs0, commits0 = store_counters(port)
    cpu0, times0 = proc_cpu(proc.pid), proc_times(proc.pid)
    if profile:
        spy = [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(proc.pid)]
        subprocess.run([*spy, "-d", str(int(window)), "-o", profile, *profile_args], check=False)
    else:
        time.sleep(window)
    cpu1, times1 = proc_cpu(proc.pid), proc_times(proc.pid)
    results1, runs1, commits1 = store_counters(port)
    import sqlite3

    procs.stop(proc)
    try:  # the row count is a cross-check of the counter; the store's schema is not this benchmark's business
        with sqlite3.connect(f"{tmp}/prober.db") as db:
            stored = db.execute("select count(*) from results").fetchone()[0]
    except sqlite3.Error:
        stored = -1
    if proc.returncode not in (0, None):
        err = (tmp / "prober.log").read_text(errors="replace")
        sys.exit(f"prober run exited {proc.returncode}: {err[-2000:]}")
    return {
        "user": times1[0] - times0[0],
        "system": times1[1] - times0[1],
        "cpu": cpu1 - cpu0,
        "results": results1 - results0,
        "runs": runs1 - runs0,
        "commits": commits1 - commits0,
        "stored_total": stored,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-k", "--targets", type=int, default=200, help="targets, each probed every 1 s (200)")
    parser.add_argument("--window", type=float, default=40.0, help="seconds CPU is measured over (40)")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before the window starts (8)")
    parser.add_argument("--only", choices=["peer", "prober"], help="run one side only")
    parser.add_argument("--prober-arg", action="append", default=[], help="extra argument for `prober run`")
    parser.add_argument("--source", help="run the prober found in this directory (default: this checkout)")
    parser.add_argument("--profile", help="record prober's window with py-spy into this file (slows it a little)")
    parser.add_argument("--profile-arg", action="append", default=[], help="extra argument for py-spy record")
    parser.add_argument("--rounds", type=int, default=1, help="peer and prober alternate this many times (1)")
    parser.add_argument(
        "--compare", metavar="DIR", help="also run the prober in DIR (e.g. the main checkout) each round"
    )
    args = parser.parse_args(argv)
    procs = Processes()
    figures: dict[str, list[float]] = {"peer": [], "prober": [], "compare": []}
    try:
        with tempfile.TemporaryDirectory(prefix="prober-bench-daemon-") as directory:
            tmp = Path(directory)
            nginx_port = free_port()
            start_nginx(procs, tmp, nginx_port)
            urls = target_urls(nginx_port, args.targets)
            print(f"{args.targets} http targets every 1 s on nginx 127.0.0.1:{nginx_port}, {args.warmup:g} s "
                  f"warm-up, {args.window:g} s window, {args.rounds} round(s)", flush=True)  # fmt: skip
            for number in range(args.rounds):
                sides = ["peer"] * (args.only != "prober")
                if args.only != "peer":
                    sides += ["prober", "compare"] if args.compare else ["prober"]
                if number % 2:  # alternate the order: a noisy minute should not always hit the same side
                    sides.reverse()
                for side in sides:
                    run_dir = tmp / f"round-{number}-{side}"
                    run_dir.mkdir()
                    if side == "peer":
                        figures["peer"].append(report_peer(bench_peer(procs, run_dir, urls, args.warmup, args.window)))
                        continue
                    source = args.compare if side == "compare" else args.source
                    own = bench_prober(procs, run_dir, urls, args.warmup, args.window, args.prober_arg,
                                       args.profile, args.profile_arg, source)  # fmt: skip
                    figures[side].append(report_prober(side, source, own))
    finally:
        procs.stop_all()
    medians = {side: statistics.median(values) for side, values in figures.items() if values}
    if "peer" in medians and "prober" in medians:
        ratio = medians["prober"] / medians["peer"]
        print(f"median CPU ms per check: peer {medians['peer']:.3f}, prober {medians['prober']:.3f}"
              + (f", compare {medians['compare']:.3f}" if "compare" in medians else ""))  # fmt: skip
        print(f"ratio (prober CPU per result / peer CPU per probe): {ratio:.2f}  "
              f"(goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT MET'})")  # fmt: skip
    if "compare" in medians and "prober" in medians:
        print(f"prober / compare (CPU per result, medians): {medians['prober'] / medians['compare']:.2f}")
    return 0


def report_peer(peer: dict[str, float]) -> float:
    total = peer["blackbox_cpu"] + peer["prometheus_cpu"]
    per = total / peer["scrapes"] * 1000 if peer["scrapes"] else float("nan")
    print(f"peer    blackbox {peer['blackbox_cpu']:.2f} + prometheus {peer['prometheus_cpu']:.2f} "
          f"= {total:.2f} CPU s; {peer['scrapes']:.0f} probes scraped, {peer['samples']:.0f} samples "
          f"ingested; {per:.3f} CPU ms per probe", flush=True)  # fmt: skip
    return per


def report_prober(side: str, source: str | None, own: dict[str, float]) -> float:
    per = own["cpu"] / own["results"] * 1000 if own["results"] else float("nan")
    name = "prober " if side == "prober" else f"compare ({source})"
    print(
        f"{name} {own['cpu']:.2f} CPU s (user {own['user']:.2f}, system {own['system']:.2f}); "
        f"{own['results']:.0f} results committed ({own['runs']:.0f} runs started, "
        f"{own['commits']:.0f} transactions); {per:.3f} CPU ms per result",
        flush=True,
    )
    return per


if __name__ == "__main__":
    sys.exit(main())
