"""A throwaway PostgreSQL server on loopback for integration tests.

Each `PostgresServer` initdb's its own cluster, listens on a free port of 127.0.0.1 only and
is reached as the superuser `orderflow` (password `orderflow`). It is tuned for speed, not
durability: fsync, full_page_writes and synchronous_commit are off. After `kill()` (a crash:
`pg_ctl stop -m immediate`) commits from the last few hundred milliseconds may be lost unless
the session that made them ran with `SET synchronous_commit = on`. `durable=True` keeps the
server's durable defaults, and `crash()` SIGKILLs every server process at once.
"""

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from tests.harness.certs import TlsFiles
from tests.harness.ports import free_port

USER = "orderflow"
PASSWORD = "orderflow"
START_TIMEOUT_S = 60
# Unix socket paths are limited to 107 bytes on Linux ("<dir>/.s.PGSQL.65535").
_MAX_SOCKET_DIR_LEN = 90


def pg_bin_dir() -> Path:
    """The bin dir of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout)."""
    override = os.environ.get("ORDERFLOW_PG_BIN")
    if override:
        candidates = [Path(override)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
            reverse=True,
        )
    for candidate in candidates:
        if (candidate / "initdb").is_file():
            return candidate
    raise RuntimeError(
        "PostgreSQL server binaries not found (no initdb under /usr/lib/postgresql/*/bin"
        " or $ORDERFLOW_PG_BIN): run scripts/ensure-services, or apt-get install postgresql"
    )


def _os_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as: `postgres` when we are root, since PostgreSQL
    refuses to run as root; None (ourselves) otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root, but there is no `postgres` OS user to run PostgreSQL as"
            " (Debian's postgresql package creates it)"
        ) from None


def _reachable_by(user: pwd.struct_passwd, path: Path) -> bool:
    """Whether `user` can traverse every directory down to `path` (ignoring ACLs)."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid != user.pw_uid and not st.st_mode & 0o001:
            return False
    return True


class PostgresServer:
    def __init__(self, base_dir: Path, tls: TlsFiles | None = None, durable: bool = False) -> None:
        """With `tls`, the server also accepts TLS connections with that certificate; a
        `durable` server keeps fsync and synchronous commits on (crash tests)."""
        self._base_dir = base_dir
        self._tls = tls
        self._durable = durable
        self._user = _os_user()
        self._bin = pg_bin_dir()
        self._root: Path | None = None
        self._port: int | None = None
        self._running = False

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("PostgresServer has not been started")
        return self._port

    @property
    def root(self) -> Path:
        """The cluster's folder (data, socket, log): what `stop_cluster` needs."""
        return self._require_cluster()

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Create a fresh cluster on a free port and start it; returns once it accepts logins."""
        if self._root is not None:
            raise RuntimeError("PostgresServer already started; use restart()")
        self._root = self._make_root()
        self._port = free_port()
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its cluster."""
        try:
            if self._running:
                self._running = False
                try:
                    self._pg_ctl("stop", "-m", "fast")
                except RuntimeError:
                    self._pg_ctl("stop", "-m", "immediate")
        finally:
            self._remove_root()

    def kill(self) -> None:
        """Crash the server (immediate shutdown, no checkpoint), keeping its data."""
        self._require_cluster()
        self._pg_ctl("stop", "-m", "immediate")
        self._running = False

    def crash(self) -> None:
        """SIGKILL the postmaster and all its processes at once, as a power cut would;
        the next start runs crash recovery."""
        self._require_cluster()
        postmaster = int((self._data_dir / "postmaster.pid").read_text().split()[0])
        victims = [postmaster, *_children(postmaster)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(_alive(pid) for pid in victims):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes {victims} survived SIGKILL")
            time.sleep(0.01)
        self._running = False

    def restart(self) -> None:
        """Start the same cluster again on the same port (after `kill()`, or from running)."""
        self._require_cluster()
        if self._running:
            self._pg_ctl("stop", "-m", "fast")
            self._running = False
        self._start_server()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @property
    def _data_dir(self) -> Path:
        return self._require_cluster() / "data"

    @property
    def _log_file(self) -> Path:
        return self._require_cluster() / "postgres.log"

    def _require_cluster(self) -> Path:
        if self._root is None:
            raise RuntimeError("PostgresServer has not been started")
        return self._root

    def _make_root(self) -> Path:
        self._base_dir.mkdir(parents=True, exist_ok=True)
        parent = self._base_dir
        # The postgres OS user must reach the cluster (pytest's tmp dirs are 0700 root), and
        # the socket path must fit; otherwise fall back to the system temp dir.
        too_long = len(str(parent)) > _MAX_SOCKET_DIR_LEN - len("/pg-XXXXXXXX/run")
        if too_long or (self._user is not None and not _reachable_by(self._user, parent)):
            parent = Path(tempfile.gettempdir())
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
        (root / "run").mkdir()
        if self._user is not None:
            for path in (root, root / "run"):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return root

    def _remove_root(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        cmd = list(args)
        if self._user is not None:
            cmd = ["runuser", "-u", self._user.pw_name, "--", *cmd]
        result = subprocess.run(
            cmd,
            cwd=self._require_cluster(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = str(self._bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self._data_dir), "-w", "-t", str(START_TIMEOUT_S), *args)

    def _initdb(self) -> None:
        root = self._require_cluster()
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run(
                str(self._bin / "initdb"),
                f"--pgdata={self._data_dir}",
                f"--username={USER}",
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{root / 'run'}'",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not self._durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        if self._tls is not None:
            settings.update(self._install_tls(self._tls))
        with (self._data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# orderflow test harness\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _install_tls(self, tls: TlsFiles) -> dict[str, str]:
        """Copies the certificate and key into the cluster (the key must belong to the
        server's OS user, mode 0600) and returns the settings that switch TLS on."""
        for source, name in ((tls.cert, "server.crt"), (tls.key, "server.key")):
            target = self._data_dir / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if self._user is not None:
                os.chown(target, self._user.pw_uid, self._user.pw_gid)
        return {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}

    def _start_server(self) -> None:
        self._pg_ctl("start", "-l", str(self._log_file))
        self._running = True
        self._wait_for_login()

    def _wait_for_login(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL on port {self.port} did not accept logins within"
                        f" {START_TIMEOUT_S} s: {exc}{self._log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def _log_tail(self, lines: int = 50) -> str:
        if self._root is None or not self._log_file.exists():
            return ""
        tail = self._log_file.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- postgres.log (last lines) ---\n" + "\n".join(tail)


def stop_cluster(root: Path) -> None:
    """Stops a server another process started (scripts/stack) and removes its cluster."""
    user = _os_user()
    cmd = [str(pg_bin_dir() / "pg_ctl"), "-D", str(root / "data"), "-w", "stop", "-m", "fast"]
    if user is not None:
        cmd = ["runuser", "-u", user.pw_name, "--", *cmd]
    subprocess.run(cmd, capture_output=True, timeout=START_TIMEOUT_S, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, parent, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie is dead


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[1] == str(parent):
            found.append(int(entry.name))
    return found
