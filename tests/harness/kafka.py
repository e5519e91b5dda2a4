"""A real single-node Apache Kafka broker (KRaft, broker+controller) for integration tests.

The broker runs from Kafka's own jars, which Maven resolves with `kafka/pom.xml` into a cache
dir (docs/adr/0007-tests-on-real-services.md says why and how). It listens on free ports of
127.0.0.1 only.
"""

import base64
import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.harness.certs import TlsFiles
from tests.harness.ports import accepts_connections, free_ports

HARNESS_DIR = Path(__file__).resolve().parent / "kafka"
POM = HARNESS_DIR / "pom.xml"
LOG4J_CONFIG = HARNESS_DIR / "log4j2.xml"
REPO_ROOT = HARNESS_DIR.parents[2]
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
# Written into the lib dir after a complete fetch; it names the pom the jars came from.
STAMP = ".pom-sha256"
READY_LINE = "Kafka Server started"

# The last two lines shorten restart() after kill(): the controller refuses the new broker
# incarnation until the killed one's session expires (9 s by default).
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
"""


def default_lib_dir() -> Path:
    override = os.environ.get("ORDERFLOW_KAFKA_LIB")
    return Path(override) if override else REPO_ROOT / ".cache" / "kafka" / "lib"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_kafka_jars(lib_dir: Path | None = None) -> Path:
    """Fetch the broker's jars into `lib_dir` with Maven unless this pom's jars are there."""
    lib_dir = lib_dir or default_lib_dir()
    stamp = lib_dir / STAMP
    if stamp.is_file() and stamp.read_text().strip() == _pom_digest():
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found on PATH: Maven is needed to fetch Kafka's jars")
    # Fetch into a fresh sibling and swap it in, so a failed or concurrent fetch never
    # leaves a half-filled lib dir behind.
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = lib_dir.with_name(f"{lib_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
    cmd.append(f"-DoutputDirectory={staging}")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0 or not any(staging.glob("*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(
            f"fetching Kafka's jars failed (exit {result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout}{result.stderr}"
        )
    (staging / STAMP).write_text(_pom_digest() + "\n")
    shutil.rmtree(lib_dir, ignore_errors=True)
    try:
        staging.rename(lib_dir)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return lib_dir


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not Path(java).is_file():
        raise RuntimeError("java not found (JAVA_HOME or PATH): Kafka needs Java 17+")
    return java


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that has Linux SIGKILL the broker when the test process dies, so a killed
    test run leaves no JVM behind. Only from the main thread: the signal fires when the
    spawning *thread* exits, which would kill a broker restarted from a worker thread."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    # Looked up here, not in the forked child, where loading symbols could deadlock.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


# With TLS: two more listeners, SSL and SASL_SSL (PLAIN, one user), with a PEM keystore.
TLS_PROPERTIES = """\
listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port},\
SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl_ssl_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port},SSL://127.0.0.1:{ssl_port},\
SASL_SSL://127.0.0.1:{sasl_ssl_port}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=\
org.apache.kafka.common.security.plain.PlainLoginModule required \
user_{sasl_user}="{sasl_password}";
"""
SASL_USER, SASL_PASSWORD = "orderflow", "orderflow-kafka-secret"


class KafkaBroker:
    def __init__(
        self,
        base_dir: Path,
        lib_dir: Path | None = None,
        tls: TlsFiles | None = None,
        detached: bool = False,
    ) -> None:
        """With `tls`, the broker also listens with SSL and SASL_SSL (see TLS_PROPERTIES).
        A `detached` broker outlives the process that started it (scripts/stack)."""
        self._base_dir = base_dir
        self._detached = detached
        self._lib_dir = lib_dir or default_lib_dir()
        self._tls = tls
        self.ssl_port: int | None = None
        self.sasl_ssl_port: int | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("KafkaBroker has not been started")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_file(self) -> Path:
        return self._base_dir / "broker.log"

    @property
    def _data_dir(self) -> Path:
        return self._base_dir / "data"

    @property
    def _config_file(self) -> Path:
        return self._base_dir / "server.properties"

    def start(self) -> None:
        """Format a fresh KRaft log dir on free ports and start the broker; returns once it
        serves clients."""
        if self._port is not None:
            raise RuntimeError("KafkaBroker already started; use restart()")
        ensure_kafka_jars(self._lib_dir)
        self._base_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self._data_dir, ignore_errors=True)
        broker_port, controller_port, self.ssl_port, self.sasl_ssl_port = free_ports(4)
        properties = SERVER_PROPERTIES.format(
            broker_port=broker_port, controller_port=controller_port, log_dir=self._data_dir
        )
        if self._tls is not None:
            keystore = self._base_dir / "keystore.pem"
            keystore.write_text(self._tls.key.read_text() + self._tls.cert.read_text())
            properties += TLS_PROPERTIES.format(
                broker_port=broker_port,
                controller_port=controller_port,
                ssl_port=self.ssl_port,
                sasl_ssl_port=self.sasl_ssl_port,
                keystore=keystore,
                sasl_user=SASL_USER,
                sasl_password=SASL_PASSWORD,
            )
        self._config_file.write_text(properties)
        self._port = broker_port
        try:
            self._format()
            self._launch()
        except BaseException:
            self._port = None
            raise

    def stop(self) -> None:
        """Shut the broker down (SIGTERM, then SIGKILL after 30 s) and delete its data.
        The broker log stays in base_dir for post-mortems."""
        self._terminate()
        shutil.rmtree(self._data_dir, ignore_errors=True)
        self._port = None

    def kill(self) -> None:
        """SIGKILL the broker, keeping its data and ports for `restart()`."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Start the broker again on the same ports with the same data."""
        if self._port is None:
            raise RuntimeError("KafkaBroker has not been started")
        self._terminate()
        self._launch()

    def _java_cmd(self, main_class: str, *args: str) -> list[str]:
        return [
            _java(),
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{self._lib_dir}/*",
            main_class,
            *args,
        ]

    def _format(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        config = str(self._config_file)
        cmd = self._java_cmd(
            # "-t=<id>": a random id may start with "-", which the tool would take for an option
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={cluster_id}",
            "-c",
            config,
        )
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"formatting Kafka's log dir failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )

    def _launch(self) -> None:
        with self.log_file.open("ab") as log:
            log_offset = log.tell()
            process = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(self._config_file)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._base_dir,
                start_new_session=True,
                preexec_fn=None if self._detached else _die_with_parent_hook(),
            )
        self._process = process
        try:
            self._wait_until_ready(process, log_offset)
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self, process: subprocess.Popen[bytes], log_offset: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            started = READY_LINE.encode() in self.log_file.read_bytes()[log_offset:]
            if started and accepts_connections(self.port):
                return
            if process.poll() is not None:
                raise RuntimeError(
                    f"Kafka broker exited with code {process.returncode}"
                    f" while starting{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka broker not ready within {START_TIMEOUT_S} s{self._log_tail()}"
                )
            time.sleep(0.2)

    def _terminate(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _log_tail(self, lines: int = 50) -> str:
        if not self.log_file.exists():
            return ""
        tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return f"\n--- {self.log_file} (last {lines} lines) ---\n" + "\n".join(tail)
