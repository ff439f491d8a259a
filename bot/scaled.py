"""The scaled profile on one machine: N Rasa servers, N action servers, nginx in front.

`python -m bot scaled --servers 2 --port 5005` (or `make run-scaled`) starts, for each
i, an action server and a Rasa server that uses it, all reading
deploy/scaled/endpoints.yml (PostgreSQL tracker store, atomic Redis locks), then nginx
from deploy/scaled/nginx.conf.template with its own prefix and pid file in a temporary
folder. Ctrl-C stops everything. Several machines: docs/scale-out.md.

It refuses to start without SESSION_SECRET (every server must sign socket.io session ids
with the same secret, or a browser sent to another server loses its conversation), and
without a PostgreSQL CONVERSATIONS_DB_URL (SQLite is one machine's file).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import IO

from bot import serve
from bot.locks import DEFAULT_URL as DEFAULT_LOCK_STORE_URL
from bot.training import ROOT

ENDPOINTS = ROOT / "deploy" / "scaled" / "endpoints.yml"
NGINX_TEMPLATE = ROOT / "deploy" / "scaled" / "nginx.conf.template"
#: The lock store's Redis database (bot.locks), the only thing the scaled profile keeps there.
DEFAULT_REDIS_URL = DEFAULT_LOCK_STORE_URL


class ProfileError(RuntimeError):
    """The scaled profile's settings are missing or unusable."""


def profile_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every server of the profile runs with (checked)."""
    from sqlalchemy.engine import make_url

    env = serve.server_env() if base is None else dict(base)
    if not env.get("SESSION_SECRET", "").strip():
        raise ProfileError(
            "the scaled profile needs SESSION_SECRET, the same on every server "
            "(see deploy/scaled/scaled.env.example)"
        )
    raw = env.get("CONVERSATIONS_DB_URL", "").strip()
    try:
        url = make_url(raw)
    except Exception:
        url = None
    if url is None or url.get_backend_name() != "postgresql":
        raise ProfileError(
            "the scaled profile needs CONVERSATIONS_DB_URL=postgresql+psycopg2://"
            "user:password@host:5432/db (one database for all servers)"
        )
    env.update(
        CONVERSATIONS_DB_HOST=url.host or "127.0.0.1",
        CONVERSATIONS_DB_PORT=str(url.port or 5432),
        CONVERSATIONS_DB_NAME=url.database or "",
        CONVERSATIONS_DB_USER=url.username or "",
        CONVERSATIONS_DB_PASSWORD=url.password or "",
    )
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("LOCK_KEY_PREFIX", "")
    # nginx runs on this machine: the servers believe its X-Forwarded-For (and only
    # its), so the staff login's throttle sees each browser's address, not nginx's.
    env.setdefault("TRUSTED_PROXIES", "127.0.0.1")
    return env


def nginx_config(listen: str, backends: list[str], run_dir: Path) -> str:
    """nginx.conf for `backends` (host:port of the Rasa servers) listening on `listen`."""
    servers = "\n".join(f"        server {backend};" for backend in backends)
    return Template(NGINX_TEMPLATE.read_text()).substitute(
        listen=listen, servers=servers, run_dir=str(run_dir)
    )


def nginx_binary() -> str:
    """The nginx executable (Debian's package installs it in /usr/sbin)."""
    found = shutil.which("nginx") or shutil.which(
        "nginx", path="/usr/sbin:/usr/local/sbin"
    )
    if not found:
        raise ProfileError("nginx is not installed (apt-get install -y nginx)")
    return found


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own URL
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    return False


@dataclass
class Cluster:
    """The running profile: its processes, ports and nginx's folder."""

    port: int
    run_dir: Path
    rasa_ports: list[int] = field(default_factory=list)
    action_ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Nginx's address."""
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Whether every process is still running."""
        every = [*self.processes, *([self.nginx] if self.nginx else [])]
        return all(process.poll() is None for process in every)

    def stop(self) -> None:
        """Stop nginx first (no new requests), then Rasa servers, then action servers."""
        if self.nginx is not None:
            serve.stop_process(self.nginx, signal.SIGQUIT)
        for process in reversed(self.processes):
            serve.stop_process(process)


def start(
    servers: int = 2,
    port: int | None = None,
    env: dict[str, str] | None = None,
    output: int | IO[bytes] | None = None,
    run_dir: Path | None = None,
    timeout: float = 240.0,
) -> Cluster:
    """Start the profile; raises ProfileError (after stopping what started) on failure."""
    env = profile_env(env)
    endpoints = env.get("SCALED_ENDPOINTS") or str(ENDPOINTS)
    cluster = Cluster(
        port=port or serve.free_port(),
        run_dir=run_dir or Path(tempfile.mkdtemp(prefix="clinic-nginx-")),
    )
    # nginx's workers drop root: they must reach their temp folders, not list them.
    cluster.run_dir.chmod(0o711)
    try:
        for _ in range(servers):
            action_port = serve.free_port()
            action_env = {
                **env,
                "ACTION_PORT": str(action_port),
                "ACTION_HOST": "127.0.0.1",
            }
            cluster.action_ports.append(action_port)
            cluster.processes.append(
                serve.start_process(
                    serve.action_server_command(), action_env, output=output
                )
            )
        for action_port in cluster.action_ports:
            rasa_port = serve.free_port()
            rasa_env = {
                **env,
                "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
            }
            command = serve.rasa_server_command(
                ["--endpoints", endpoints, "--interface", "127.0.0.1"],
                port=rasa_port,
            )
            cluster.rasa_ports.append(rasa_port)
            cluster.processes.append(
                serve.start_process(command, rasa_env, output=output)
            )
        for process, rasa_port in zip(
            cluster.processes[servers:], cluster.rasa_ports, strict=True
        ):
            if not _wait_for(f"http://127.0.0.1:{rasa_port}/", process, timeout):
                raise ProfileError(f"the Rasa server on :{rasa_port} did not start")
        conf = cluster.run_dir / "nginx.conf"
        conf.write_text(
            nginx_config(
                f"{env.get('RASA_INTERFACE', '127.0.0.1')}:{cluster.port}",
                [f"127.0.0.1:{p}" for p in cluster.rasa_ports],
                cluster.run_dir,
            )
        )
        cluster.nginx = serve.start_process(
            [
                nginx_binary(),
                "-p",
                str(cluster.run_dir),
                "-c",
                str(conf),
                "-e",
                str(cluster.run_dir / "error.log"),
            ],
            env,
            output=output,
        )
        if not _wait_for(cluster.url + "/", cluster.nginx, 30):
            raise ProfileError(f"nginx did not start (see {cluster.run_dir}/error.log)")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def run(servers: int, port: int) -> int:
    """Serve until Ctrl-C (or until a process stops); returns the exit status."""
    try:
        cluster = start(servers=servers, port=port)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopping = serve.stop_requested()
    print(
        f"\nscaled profile ready: http://localhost:{cluster.port} (nginx) -> Rasa servers "
        f"on {', '.join(map(str, cluster.rasa_ports))}, action servers on "
        f"{', '.join(map(str, cluster.action_ports))}  (Ctrl-C stops all)\n",
        flush=True,
    )
    try:
        while not stopping():
            if not cluster.alive():
                print("a server stopped unexpectedly; shutting down", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("stopping nginx, the Rasa servers and the action servers...", flush=True)
        cluster.stop()
        print("stopped.")


def default_servers() -> int:
    """SCALED_SERVERS, default 2."""
    try:
        return max(1, int(os.environ.get("SCALED_SERVERS", "2")))
    except ValueError:
        return 2
