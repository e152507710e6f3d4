"""The production set-up of README's "Running in production", run from the files in deploy/: the environment file,
the commands of the systemd units, and nginx with the shipped site file (TLS taken out, ports and paths moved to
this test's own)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/webinar_pay"  # where the units expect the code
PUBLIC_HOST = "tickets.example.com"  # the site file's server_name and the environment file's BASE_URL
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NOBODY = 65534


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shipped_environment(**overrides: str | None) -> dict[str, str]:
    """deploy/webinar-pay.env as systemd reads it (NAME=value lines), with `overrides` (None removes a name)."""
    env: dict[str, str] = {}
    for line in (DEPLOY / "webinar-pay.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _sep, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            env[name.strip()] = value
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def process_environment(app_env: dict[str, str], runtime_dir: Path | None = None) -> dict[str, str]:
    """What a unit's process gets: its EnvironmentFile, a PATH, and the runtime folder the web unit gives gunicorn
    (its control socket goes there); nothing from this test's own environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **app_env}
    if runtime_dir is not None:
        env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return env


def unit_command(unit: str) -> list[str]:
    """The ExecStart of deploy/<unit>, with the install directory's virtualenv replaced by the one running us."""
    text = (DEPLOY / unit).read_text()
    command = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE).group(1)
    venv_bin = str(Path(sys.executable).parent)
    return [word.replace(f"{INSTALL_DIR}/.venv/bin", venv_bin) for word in shlex.split(command)]


def unit_setting(unit: str, name: str) -> str:
    return re.search(rf"^{name}=(.+)$", (DEPLOY / unit).read_text(), re.MULTILINE).group(1)


def wait_for(url: str, process: subprocess.Popen, what: str, timeout: float = 60, **kwargs) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            requests.get(url, timeout=5, **kwargs)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Gunicorn:
    """The web unit's command (`gunicorn app:app`, reading gunicorn.conf.py) on a free port; its access log on
    stdout and its error log (with the app's own log lines) on stderr, both kept in files."""

    def __init__(self, app_env: dict[str, str], log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = log_dir / "gunicorn.stdout.log"
        self.stderr = log_dir / "gunicorn.stderr.log"
        env = process_environment(app_env, runtime_dir=log_dir)
        env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{self.port} --access-logfile - --error-logfile -"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(unit_command("webinar-pay-web.service"), cwd=ROOT, env=env,
                                            stdout=out, stderr=err)  # fmt: skip
        try:
            wait_for(self.url + "/healthz", self.process, "gunicorn")
        except RuntimeError as error:
            stop(self.process)  # never left running behind a failed start
            raise RuntimeError(f"{error}:\n{self.stderr.read_text()}") from None

    def logs(self) -> tuple[str, str]:
        """(access log, error log), once the process has stopped and flushed them."""
        stop(self.process)
        return self.stdout.read_text(), self.stderr.read_text()

    def stop(self) -> None:
        stop(self.process)


def plain_http_site(site: str, http_port: int, https_port: int, upstream_port: int, log_dir: Path) -> str:
    """The shipped site file with TLS taken out: the port-80 server on `http_port`, the TLS server as plain HTTP on
    `https_port` (it still tells the app the scheme is https), gunicorn's address and the log folder moved."""
    transformed = []
    for line in site.splitlines():
        stripped = line.strip()
        if stripped.startswith(("ssl_", "listen [::]")):
            continue
        line = line.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        line = re.sub(r"listen 443 ssl( http2)?;", f"listen 127.0.0.1:{https_port};", line)
        line = line.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
        line = line.replace("/var/log/nginx/", f"{log_dir}/")
        transformed.append(line)
    return "\n".join(transformed) + "\n"


class Nginx:
    """Debian's nginx, unprivileged (as nobody when we are root), with its prefix, temp files and logs in a fresh
    folder, serving deploy/nginx-webinar-pay.conf made plain HTTP."""

    def __init__(self, upstream_port: int):
        self.dir = Path(tempfile.mkdtemp(prefix="webinar_pay_nginx_"))
        self.http_port, self.https_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.https_port}"
        self.redirect_url = f"http://127.0.0.1:{self.http_port}"
        site = (DEPLOY / "nginx-webinar-pay.conf").read_text()
        self.site = plain_http_site(site, self.http_port, self.https_port, upstream_port, self.dir)
        (self.dir / "site.conf").write_text(self.site)
        temp = "".join(f"    {kind}_temp_path {self.dir}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi",
                                                                                   "uwsgi", "scgi"))  # fmt: skip
        (self.dir / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log info;\n"
            f"events {{ worker_connections 128; }}\n"
            f"http {{\n{temp}    access_log {self.dir}/default.access.log;\n    include {self.dir}/site.conf;\n}}\n"
        )
        as_nobody = os.geteuid() == 0
        if as_nobody:
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, NOBODY, NOBODY)
        command = [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30,
                               preexec_fn=_drop_to_nobody if as_nobody else None)  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the site file:\n{check.stderr}\n{self.site}")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=_drop_to_nobody if as_nobody else None)  # fmt: skip
        try:
            wait_for(self.url + "/healthz", self.process, "nginx", headers={"Host": PUBLIC_HOST})
        except RuntimeError:
            self.stop()  # never left running behind a failed start
            raise

    def access_log(self) -> str:
        """The site's access log, complete: nginx writes a line after the response, so it is stopped first."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: requests in flight finish and are logged
            self.process.wait(timeout=30)
        path = self.dir / "webinar-pay.access.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def nginx_missing() -> str | None:
    """Why nginx tests cannot run here, or None."""
    if not os.access(NGINX, os.X_OK):
        return "Debian's nginx is not installed (run tests/install-test-packages.sh as root)"
    return None


def redis_missing() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return "no Redis server on 127.0.0.1:6379"
    return None
