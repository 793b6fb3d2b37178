"""Benchmark: the tracking endpoints under a flood, against two references, in one run
(tracking issue, E1 / E2).

With `wrk` on loopback (64 connections, 2 threads, `--latency`, 10 s after a 2 s warm-up each),
one after another on this machine:

1. nginx serving the 43-byte GIF as a static file (a throwaway config on a free port);
2. a bare WSGI function returning the same GIF under gunicorn, 4 (sync) workers;
3. a bare Django view returning it under gunicorn, 4 workers, no middleware (`--no-django` to
   skip);
4. our pixel through the web service's WSGI entry (`crm.wsgi`, gunicorn as docker-compose runs
   the web service: 4 workers, 4 threads): the `/t/` paths answered before Django, one XADD per
   hit;
5. our pixel under the production setup: `python -m tracking.server` as docker-compose's
   `tracking` service runs it (a worker per CPU), with the hits batched into Redis;
6. our click redirect on the same server (a signed link of a tracked message in a fresh
   database, `crm_bench_tracking`).

It prints requests/s and p50 / p99 latency for each, the ratio of ours to the bare WSGI
function, and checks that no hit was lost: the stream entries added during each of our runs
against the requests wrk completed (an answered hit was stored first, so there are at least as
many entries; at most one per connection more, for requests answered after wrk stopped
reading). The hits go to a stream of the run's own (`CRM_TRACKING_STREAM`), deleted at the end
with the database.

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python bench/tracking.py`
(Debian packages `wrk` and `nginx-light` or `nginx`: `apt-get install wrk nginx-light`). Options:
`--duration 10`, `--connections 64`, `--tracking-workers 1,2,4` (several server sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.persons_api import _use_bench_database  # noqa: E402

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GIF_HEADERS = [
    ("Content-Type", "image/gif"),
    ("Content-Length", str(len(GIF))),
    ("Cache-Control", "no-store, no-cache, must-revalidate, private, max-age=0"),
]
TOKEN = "5f0c2a9d8e7b4c1a9f3e6d2b8a7c4e1f"  # a well-formed token (the flush worker drops it)
PIXEL_PATH = f"/t/o/{TOKEN}.gif"


# --- The references, as gunicorn loads them -------------------------------------------------------


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The bare WSGI reference: the GIF, nothing else."""
    start_response("200 OK", GIF_HEADERS)
    return [GIF]


def bare_django() -> Any:
    """The bare Django reference (gunicorn 'bench.tracking:bare_django()'): one view returning
    the GIF, no middleware, no database."""
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="bench.tracking",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()
    return get_wsgi_application()


def _pixel_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(GIF, content_type="image/gif", headers=dict(GIF_HEADERS[2:]))


def __getattr__(name: str) -> Any:
    """`urlpatterns`, for the bare Django reference's URLconf (this module), made on demand:
    importing this file needs no Django."""
    if name == "urlpatterns":
        from django.urls import re_path

        return [re_path(r"^t/o/[0-9a-f]{32}\.gif$", _pixel_view)]
    raise AttributeError(name)


# --- Running things ----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: str
    added: int | None = None  # stream entries added during the run (ours)
    redis_cpu: float | None = None  # CPU seconds Redis used during the run (ours)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                response.read()
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in time")


@contextlib.contextmanager
def _running(command: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(  # noqa: S603 - our own commands
        command,
        cwd=REPO,
        env=env or os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(url, process)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 - wrk from PATH, our URL
        [
            shutil.which("wrk") or "/usr/bin/wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    assert done, output
    seconds = float(done.group(2)) * (60 if done.group(3) == "m" else 1)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    errors = []
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors.append(f"socket errors: {socket_errors.group(1)}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors.append(f"non-2xx/3xx: {non_2xx.group(1)}")
    return {
        "requests": int(done.group(1)),
        "seconds": seconds,
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": "; ".join(errors),
    }


def measure(name: str, url: str, args: argparse.Namespace, redis: Any = None) -> Result:
    """A warm-up, then the measured run; with `redis`, the stream entries added during the run
    and the CPU time Redis spent."""
    wrk(url, duration=2, connections=args.connections, threads=args.threads)
    time.sleep(0.5)  # hits answered after the warm-up's wrk stopped are stored by now
    before = (_stream_length(redis, args.stream), _cpu(redis)) if redis else (0, 0.0)
    figures = wrk(url, duration=args.duration, connections=args.connections, threads=args.threads)
    time.sleep(0.5)
    result = Result(name=name, **figures)
    if redis:
        result.added = _stream_length(redis, args.stream) - before[0]
        result.redis_cpu = _cpu(redis) - before[1]
    print(
        f"  {name:<48} {result.rate:>10,.0f} req/s   p50 {result.p50_ms:6.2f} ms   "
        f"p99 {result.p99_ms:6.2f} ms   ({result.requests:,} requests"
        + (f", {result.added:,} stream entries" if result.added is not None else "")
        + (f", Redis {result.redis_cpu:.1f} CPU-s" if result.redis_cpu is not None else "")
        + (f"; {result.errors}" if result.errors else "")
        + ")",
        flush=True,
    )
    return result


def _stream_length(redis: Any, stream: str) -> int:
    return int(redis.xlen(stream))


def _cpu(redis: Any) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- The run -----------------------------------------------------------------------------------


NGINX_CONF = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    types {{ image/gif gif; }}
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {dir};
        location ~ "^/t/o/[0-9a-f]{{32}}\\.gif$" {{
            add_header Cache-Control "no-store, no-cache, must-revalidate, private, max-age=0";
            try_files /pixel.gif =404;
        }}
    }}
}}
"""


def _tracked_click() -> str:
    """A tracked message in the bench database; its first link's signed path."""
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.core.management import call_command

    from crm import encryption, services, tenancy
    from crm.models import Membership
    from inbox import sending, trackmarks
    from inbox.models import MailAccount, MailOutbound

    call_command("migrate", verbosity=0)
    company, admin, _ = services.bootstrap_company(
        name="Bench Co", admin_email="alice@bench.test", password="bench-password-123"
    )
    with tenancy.bound(company.pk, user_id=admin.pk):
        account = MailAccount.objects.create(
            company=company,
            owner=admin,
            email_address="alice@bench.test",
            imap_host="127.0.0.1",
            imap_port=143,
            imap_security="none",
            smtp_host="127.0.0.1",
            smtp_port=25,
            smtp_security="none",
            username="alice",
            secret_encrypted=encryption.encrypt("bench"),
        )
        membership = Membership.objects.for_company(company).get(user=admin)
        outbound = sending.message_send(
            membership=membership,
            draft=sending.Draft(
                account_id=account.pk,
                to=["pat@customer.test"],
                subject="Offer",
                body_html='<p><a href="https://shop.example/offer?id=7">offer</a></p>',
                track_opens=True,
                track_links=True,
            ),
            undo=timedelta(0),
        )
        MailOutbound.objects.for_company(company).filter(pk=outbound.pk).update(
            tracked_links=["https://shop.example/offer?id=7"]
        )
    key = trackmarks.tracking_key(settings.SECRET_KEY)
    return f"/t/c/{outbound.token}/0/{trackmarks.link_signature(key, outbound.token, 0)}"


def _machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{len(os.sched_getaffinity(0))} CPUs ({model}), {memory:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--database", default="crm_bench_tracking")
    parser.add_argument(
        "--tracking-workers",
        default="",
        help="comma-separated worker counts of the tracking server (default: one per CPU)",
    )
    parser.add_argument("--no-django", action="store_true", help="skip the bare Django view")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing: apt-get install wrk nginx-light")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    bin_dir = Path(sys.executable).parent
    gunicorn = str(bin_dir / "gunicorn")

    _use_bench_database(args.database)
    stream = f"bench:tracking:hits:{uuid.uuid4().hex}"
    os.environ["CRM_TRACKING_STREAM"] = stream
    from django.conf import settings
    from redis import Redis

    redis = Redis.from_url(settings.REDIS_URL)
    click_path = _tracked_click()
    print(f"machine: {_machine()}; load before: {os.getloadavg()[0]:.2f}", flush=True)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency "
        f"(after a 2 s warm-up each); Redis {settings.REDIS_URL.rsplit('@', 1)[-1]}",
        flush=True,
    )

    args.stream = stream
    results: dict[str, Result] = {}
    bare_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(redis.delete, stream)
        cleanup.callback(_drop_database, args.database)
        work = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
        cleanup.callback(shutil.rmtree, work, True)
        work.chmod(0o755)  # nginx's workers run as another user when started as root
        (work / "pixel.gif").write_bytes(GIF)
        (work / "pixel.gif").chmod(0o644)

        port = _free_port()
        (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=port))
        url = f"http://127.0.0.1:{port}{PIXEL_PATH}"
        with _running([nginx, "-c", str(work / "nginx.conf"), "-p", str(work)], url):
            results["nginx"] = measure("nginx, static file", url, args)

        port = _free_port()
        url = f"http://127.0.0.1:{port}{PIXEL_PATH}"
        reference = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "4"]
        with _running([*reference, "bench.tracking:bare_wsgi"], url, bare_env):
            results["wsgi"] = measure("bare WSGI function, gunicorn 4 workers", url, args)

        if not args.no_django:
            port = _free_port()
            url = f"http://127.0.0.1:{port}{PIXEL_PATH}"
            reference = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "4"]
            with _running([*reference, "bench.tracking:bare_django()"], url, bare_env):
                results["django"] = measure("bare Django view, gunicorn 4 workers", url, args)

        # Ours through the web service, as docker-compose runs it.
        port = _free_port()
        url = f"http://127.0.0.1:{port}{PIXEL_PATH}"
        web = [gunicorn, "crm.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        with _running([*web, "--workers", "4", "--threads", "4"], url):
            results["ours-wsgi"] = measure(
                "our pixel, web service (crm.wsgi, 4x4)", url, args, redis
            )

        # Ours on the tracking server, as docker-compose runs it (and other sizes if asked).
        sizes = [int(n) for n in args.tracking_workers.split(",") if n] or [0]
        for workers in sizes:
            port = _free_port()
            server = [sys.executable, "-m", "tracking.server", "--host", "127.0.0.1"]
            server += ["--port", str(port)]
            label = "tracking server"
            if workers:
                server += ["--workers", str(workers)]
                label += f", {workers} workers"
            else:
                label += f", {len(os.sched_getaffinity(0))} workers (default)"
            pixel = f"http://127.0.0.1:{port}{PIXEL_PATH}"
            with _running(server, pixel):
                key = "ours" if not workers else f"ours-{workers}"
                results[key] = measure(f"our pixel, {label}", pixel, args, redis)
                results[f"{key}-click"] = measure(
                    f"our click, {label}", f"http://127.0.0.1:{port}{click_path}", args, redis
                )

    print()
    reference_rate = results["wsgi"].rate
    lost = False
    for result in results.values():
        line = f"  {result.name:<48} ratio to bare WSGI {result.rate / reference_rate:5.2f}"
        if result.added is not None:
            extra = result.added - result.requests
            ok = 0 <= extra <= args.connections
            lost = lost or not ok
            line += (
                f"   hits: {result.requests:,} answered, {result.added:,} in the stream "
                f"({'none lost' if ok else 'MISMATCH'})"
            )
        print(line)
    print(json.dumps({key: vars(result) for key, result in results.items()}, indent=1))
    if lost:
        sys.exit("hits were lost")


def _drop_database(name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    server = os.environ["DATABASE_URL"].rpartition("/")[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
