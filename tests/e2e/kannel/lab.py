"""A Kannel lab for the interop test: the kannel.conf that binds Kannel's SMPP client to the
gateway (one ``group = smsc`` per ESME account, ``msg-id-type`` derived from the account's
message-id base), bearerbox and smsbox as bounded subprocesses whose logs stay in the test's
directory, and the HTTP endpoint that plays Kannel's application: it records every
sms-service ``get-url`` and ``dlr-url`` request and may answer an MO the way an application
answers Kannel (a body and ``X-Kannel-*`` headers).

Everything here blocks (sockets, subprocesses, polling Kannel's status page); the test calls
it off the reactor so the gateway keeps serving.  Kannel 1.4.5 has no event to wait on, so
readiness is polled at a short interval within a deadline.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

import attrs

from gateway.config import EsmeAccount

SENDSMS_USER: Final = "lab"
SENDSMS_PASSWORD: Final = "labpass"
STATUS_PASSWORD: Final = "status"
ADMIN_PASSWORD: Final = "admin"
#: SMPP 3.4 §5.3.2.44: the TLV Kannel must be told about to send it (``group = smpp-tlv``).
USSD_SERVICE_OP_TAG: Final = 0x0501
POLL: Final = 0.05
#: A warning or error of Kannel's SMPP client or DLR matching: about our PDUs or receipts.
_COMPLAINT: Final = re.compile(r"\] (WARNING|ERROR|PANIC): .*(SMPP|DLR|SMSC|smsc)")

#: (body, headers) an application answers an MO with; an empty body sends nothing back.
Answer = tuple[str, dict[str, str]]


def which(program: str) -> str:
    """The path of a Kannel program: Debian puts them in /usr/sbin, often not on a user's PATH."""
    return (
        shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/local/sbin") or program
    )


def msg_id_type(account: EsmeAccount) -> int:
    """Kannel's ``msg-id-type`` for an account: bit 0 says submit_sm_resp ids are hex, bit 1
    that receipt ids are (DESIGN.md, "Known traps"); both follow ``message_id_format``."""
    return 0x03 if account.message_id_format == "hex" else 0x00


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (for the boxes, which cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@attrs.frozen(kw_only=True)
class Route:
    """One ``group = smsc`` of kannel.conf: Kannel bound as transceiver with one ESME account.

    ``address_range`` goes in the bind; the gateway delivers the numbers it matches to this
    bind (GW-08).
    """

    smsc_id: str
    account: EsmeAccount
    address_range: str


def kannel_conf(
    *,
    smpp_port: int,
    routes: Sequence[Route],
    admin_port: int,
    smsbox_port: int,
    sendsms_port: int,
    service_url: str,
    logs: Path,
) -> str:
    """The whole kannel.conf of the lab."""
    core = f"""\
group = core
admin-port = {admin_port}
admin-interface = 127.0.0.1
admin-password = {ADMIN_PASSWORD}
status-password = {STATUS_PASSWORD}
smsbox-port = {smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{logs / "bearerbox.log"}"
log-level = 0
access-log = "{logs / "bearerbox-access.log"}"
dlr-storage = internal
"""
    smscs = "".join(
        f"""
group = smsc
smsc = smpp
smsc-id = {route.smsc_id}
allowed-smsc-id = {route.smsc_id}
host = 127.0.0.1
port = {smpp_port}
receive-port = 0
transceiver-mode = true
smsc-username = {route.account.system_id}
smsc-password = {route.account.password}
system-type = ""
address-range = "{route.address_range}"
msg-id-type = 0x{msg_id_type(route.account):02x}
interface-version = 34
reconnect-delay = 1
enquire-link-interval = 30
"""
        for route in routes
    )
    boxes = f"""
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{logs / "smsbox.log"}"
log-level = 0
access-log = "{logs / "smsbox-access.log"}"

group = sendsms-user
username = {SENDSMS_USER}
password = {SENDSMS_PASSWORD}
concatenation = true
max-messages = 10

# %b is the message as it came (UCS-2 bytes when %c is 2), %D Kannel's meta-data.
group = sms-service
keyword = default
catch-all = true
get-url = "{service_url}/mo?from=%p&to=%P&text=%a&bin=%b&coding=%c&smsc=%i&id=%I&meta=%D"
accept-x-kannel-headers = true
max-messages = 1
omit-empty = true

# Without this Kannel drops the TLV from what it sends; what it receives it reports in
# the meta-data as the raw octet (its built-in table knows the tag as an octet string).
group = smpp-tlv
name = ussd_service_op
tag = 0x{USSD_SERVICE_OP_TAG:04x}
type = integer
length = 1
"""
    return core + smscs + boxes


# -- the application's HTTP endpoint ----------------------------------------------------------


def _latin1_query(query: str) -> dict[str, str]:
    # latin-1 keeps every octet: Kannel sends UCS-2 and raw TLV octets percent-encoded.
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True, encoding="latin-1"))


def parse_meta_data(meta: str) -> dict[str, dict[str, str]]:
    """Kannel's meta-data, ``?smpp?ussd_service_op=%02&`` → ``{"smpp": {"ussd_service_op":
    "\\x02"}}`` (groups between question marks, then a URL-encoded query)."""
    groups: dict[str, dict[str, str]] = {}
    pieces = meta.split("?")
    for index in range(1, len(pieces) - 1, 2):
        groups[pieces[index]] = _latin1_query(pieces[index + 1])
    return groups


@attrs.frozen(kw_only=True)
class Hit:
    """One request Kannel made to the application: the path and its query parameters."""

    path: str
    params: dict[str, str]

    def get(self, name: str) -> str:
        return self.params.get(name, "")

    @property
    def sender(self) -> str:
        return self.get("from").lstrip("+")

    @property
    def receiver(self) -> str:
        return self.get("to").lstrip("+")

    @property
    def text(self) -> str:
        """The message text: ``%b`` decoded as ``%c`` says (2 is UCS-2, big-endian)."""
        raw = self.get("bin")
        if self.get("coding") == "2":
            return raw.encode("latin-1").decode("utf-16-be")
        return raw

    @property
    def meta(self) -> dict[str, dict[str, str]]:
        return parse_meta_data(self.get("meta"))

    @property
    def ussd_service_op(self) -> int | None:
        """The op Kannel reported in the meta-data (a raw octet in 1.4.5, digits elsewhere)."""
        value = self.meta.get("smpp", {}).get("ussd_service_op")
        if value is None or value == "":
            return None
        if value.isdigit():
            return int(value)
        return int.from_bytes(value.encode("latin-1"), "big")


class Application:
    """A stdlib HTTP server on 127.0.0.1 that records what Kannel requests and answers it.

    ``respond`` is asked for the answer to each request (in the server's thread).
    """

    def __init__(self) -> None:
        self.respond: Callable[[Hit], Answer] = lambda hit: ("", {})
        self._hits: list[Hit] = []
        self._changed = threading.Condition()
        application = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                hit = Hit(path=split.path, params=_latin1_query(split.query))
                try:
                    body, headers = application.respond(hit)
                except Exception as exc:  # an answer that broke must still be recorded
                    body, headers = "", {"X-Responder-Error": repr(exc)[:200]}
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with application._changed:
                    application._hits.append(hit)
                    application._changed.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the hits are the log

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def mark(self) -> int:
        """How many requests came so far: pass it as ``since`` to wait for newer ones."""
        with self._changed:
            return len(self._hits)

    def hits(self, since: int = 0) -> list[Hit]:
        with self._changed:
            return self._hits[since:]

    def wait_for(
        self, predicate: Callable[[Hit], bool], *, what: str, since: int = 0, timeout: float = 10.0
    ) -> Hit:
        """The first request since ``since`` that matches; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for hit in self._hits[since:]:
                    if predicate(hit):
                        return hit
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = "\n".join(f"  {h.path} {h.params}" for h in self._hits[since:])
                    raise AssertionError(
                        f"Kannel never requested {what} in {timeout} s; saw:\n{seen}"
                    )
                self._changed.wait(remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# -- the boxes --------------------------------------------------------------------------------


class Kannel:
    """bearerbox and smsbox run on ``conf``; every output goes to files under ``logs``."""

    def __init__(
        self, conf: Path, logs: Path, *, admin_port: int, smsbox_port: int, sendsms_port: int
    ) -> None:
        self.conf, self.logs = conf, logs
        self.admin_port, self.smsbox_port, self.sendsms_port = (
            admin_port,
            smsbox_port,
            sendsms_port,
        )
        self._processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def _spawn(self, program: str) -> subprocess.Popen[bytes]:
        output = (self.logs / f"{program}.out").open("wb")
        # -v 2: warnings and worse on the console file; the log-file has everything.
        process = subprocess.Popen(
            [which(program), "-v", "2", str(self.conf)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.logs,
        )
        self._processes.append((program, process, output))
        return process

    def _check_alive(self) -> None:
        for program, process, _ in self._processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"{program} exited with {process.returncode}\n{self.log_tails()}"
                )

    def _until(self, condition: Callable[[], bool], what: str, deadline: float) -> None:
        while not condition():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"Kannel: {what} did not happen in time\n{self.log_tails()}")
            time.sleep(POLL)

    def start(self, smsc_ids: Sequence[str], timeout: float = 20.0) -> None:
        """Start both boxes; return once every SMSC is online and sendsms answers."""
        deadline = time.monotonic() + timeout
        self._spawn("bearerbox")
        self._until(lambda: accepts(self.smsbox_port), "bearerbox listening for smsbox", deadline)
        self._spawn("smsbox")
        for smsc_id in smsc_ids:
            self._until(functools.partial(self.online, smsc_id), f"{smsc_id} online", deadline)
        self._until(lambda: accepts(self.sendsms_port), "smsbox's sendsms port open", deadline)

    def status(self) -> str:
        """bearerbox's plain-text status page."""
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={STATUS_PASSWORD}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text: str = response.read().decode("utf-8", "replace")
                return text
        except (OSError, urllib.error.URLError):
            return ""

    def online(self, smsc_id: str) -> bool:
        return self.smsc_line(smsc_id).find("(online") >= 0

    def smsc_line(self, smsc_id: str) -> str:
        """The status page's line of one SMSC connection (empty if absent)."""
        for line in self.status().splitlines():
            if line.strip().startswith(f"{smsc_id}["):
                return line.strip()
        return ""

    def sendsms(self, **params: str) -> str:
        """One HTTP sendsms; the body of Kannel's answer (``0: Accepted for delivery``)."""
        query = urllib.parse.urlencode(
            {"username": SENDSMS_USER, "password": SENDSMS_PASSWORD, **params}
        )
        url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: str = response.read().decode("utf-8", "replace")
                return body
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"sendsms answered {exc.code}: {exc.read().decode('utf-8', 'replace')}"
            ) from None

    def complaints(self) -> list[str]:
        """What Kannel's SMPP client and DLR matching warned about, from both boxes' logs."""
        found: list[str] = []
        for name in ("bearerbox.log", "smsbox.log"):
            path = self.logs / name
            if path.exists():
                lines = path.read_text("utf-8", "replace").splitlines()
                found.extend(f"{name}: {line}" for line in lines if _COMPLAINT.search(line))
        return found

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.out")) + sorted(self.logs.glob("*.log")):
            text = path.read_text("utf-8", "replace").splitlines()
            parts.append(f"--- {path} (last {lines} lines) ---")
            parts.extend(text[-lines:])
        return "\n".join(parts)

    @contextmanager
    def explain(self) -> Iterator[None]:
        """On a failure, print the logs' tails (pytest shows them with the failure)."""
        try:
            yield
        except BaseException:
            print(self.log_tails())
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM smsbox, then bearerbox (which unbinds); SIGKILL whatever outlives it."""
        for program, process, output in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    print(f"{program} ignored SIGTERM for {timeout} s; killed")
                    process.kill()
                    process.wait(timeout)
            output.close()
        self._processes.clear()
