"""The ``ussdsim`` command line: ``serve`` runs the simulator; the API commands are thin
clients of a running one's control API (``gateway.http``) over stdlib ``urllib``; the handset
commands ``dial``, ``sms`` and ``watch`` play subscribers over SMPP (``gateway.client``,
python-smpplib underneath) and follow the message log.

``clock show|advance 1h30m``, ``subscriber show|list|create``, ``usage`` and ``messages``
talk to ``--api`` (default ``$USSDSIM_API`` or ``http://127.0.0.1:8775``).  Commands that
change something send the API token: ``--token``, else ``$USSDSIM_TOKEN``, else the token
file ``serve`` writes beside its state file (``--token-file``, default
``ussdsim.sqlite3.token``).

**Handset.** ``dial MSISDN CODE`` and ``sms FROM TO TEXT`` bind a transceiver to ``--smpp``
(default ``$USSDSIM_SMPP`` or ``127.0.0.1:2775``) as ``--system-id``/``--password``
(``$USSDSIM_SYSTEM_ID``/``$USSDSIM_PASSWORD``, else the bundled ``tester``/``secret``), with
the number itself as the bind's address_range, so the handset gets that number's messages
and no other's.  ``dial`` dials CODE (GW-10), shows each screen under ``[USSD from 123,
menu]`` (or ``final``) and reads the answer from the terminal — an empty line is not sent;
EOF or Ctrl-C releases the dialogue (op 32) — or takes them in order from
``--answers 5,3,0898123456,G,30``.  While it runs, and for ``--wait`` seconds after it
ends, SMS and receipts for the number are shown as ``[SMS from 125] …`` (concatenated parts
rejoined).  ``sms`` submits TEXT (split and coded as needed) and shows what arrives for
FROM within ``--wait`` seconds, stopping at ``--count N``.  ``watch`` polls
``GET /api/v1/messages?after=ID`` (``--interval``) and prints each MO and MT logged since it
started (``--after ID`` to replay), one line each — time, direction, from -> to,
``USSD <op>``/``SMS``/``receipt``, text — or the API's entries as JSON lines (``--json``),
until Ctrl-C, ``--count`` or ``--for``.  Where a command waits, a spinner turns on stderr,
only if that is a terminal.

**Errors** are one line on stderr, never a traceback, and the exit status says what
happened::

    0    done: the dialogue ended (by the gateway, after the last answer, or at EOF or
         Ctrl-C when interactive), the SMS was submitted, the watch ran its course
    1    failure: the API's error code and message, a refusal by the gateway (the SMPP
         status by name, e.g. ESME_RTHROTTLED), no screen within --timeout, the dialogue
         ended with answers unused, fewer than --count replies, the connection lost
    2    bad arguments (argparse's one line: a malformed MSISDN, USSD code or HOST:PORT)
    3    could not connect (refused, no such host: the SMPP port or the control API) or
         bind (a wrong system_id or password)
    130  interrupted: Ctrl-C in a scripted dial, in sms or in an API command
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import enum
import json
import logging
import math
import os
import re
import select
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from gateway.client import Received, SmppClient

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
DEFAULT_API = "http://127.0.0.1:8775"
DEFAULT_STATE = "ussdsim.sqlite3"


def token_file_for(state_path: str) -> Path | None:
    """Where ``serve`` leaves the API token for the CLI: beside the state file."""
    if state_path == ":memory:" or state_path.startswith("file:"):
        return None
    return Path(f"{state_path}.token")


def _write_token_file(path: Path, token: str) -> None:
    # Readable by the owner only, like the state file it stands beside should be.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")


def _serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor as the_reactor

    # Any: the global reactor's type is a module attribute mypy cannot see through.
    reactor: Any = the_reactor

    from gateway.app import Gateway, configure_logging
    from gateway.config import ConfigError, load_config
    from services.store import StoreError

    try:
        config = load_config(
            Path(args.config) if args.config else None,
            smpp_host=args.host,
            smpp_port=args.port,
            http_port=args.http_port,
            state_path=args.state,
        )
    except ConfigError as exc:
        print(f"ussdsim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import logging

    configure_logging(json=args.json, level=getattr(logging, args.log_level.upper()))
    try:
        gateway = Gateway(config, reactor)
        gateway.start()
    except (StoreError, OSError) as exc:
        print(f"ussdsim: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a listen error from Twisted (CannotListenError) and the like
        print(f"ussdsim: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    host, port = gateway.smpp_address
    print(f"ussdsim: SMPP 3.4 on {host}:{port}, state in {config.state_path}", flush=True)
    http_host, http_port = gateway.http_address
    print(f"ussdsim: control API on http://{http_host}:{http_port}/api/v1/", flush=True)
    token_file = token_file_for(config.state_path)
    where = ""
    if token_file is not None:
        try:
            _write_token_file(token_file, gateway.api_token)
            where = f", also in {token_file}"
        except OSError as exc:
            print(f"ussdsim: cannot write {token_file}: {exc}", file=sys.stderr, flush=True)
    print(
        f"ussdsim: API token {gateway.api_token} (send 'Authorization: Bearer <token>'{where})",
        flush=True,
    )
    for account in config.accounts:
        print(
            f"ussdsim: ESME account system_id={account.system_id!r}"
            f" password={account.password!r} binds={','.join(sorted(account.bind_types))}",
            flush=True,
        )

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("ussdsim: stopping (unbinding sessions, flushing the store)", flush=True)
        d = gateway.stop()
        d.addBoth(lambda _: reactor.stop())

    # SIGINT/SIGTERM: unbind, flush, then stop the reactor (Twisted's own handler would
    # stop the reactor before the sessions are told).
    reactor.callWhenRunning(
        lambda: (
            signal.signal(signal.SIGINT, lambda *a: reactor.callFromThread(stop)),
            signal.signal(signal.SIGTERM, lambda *a: reactor.callFromThread(stop)),
        )
    )
    reactor.run(installSignalHandlers=False)
    return 0


# -- the thin clients of the control API --------------------------------------------------------


class CommandFailed(Exception):
    """What went wrong, as the one line the user sees, and the exit status it means.

    ``unreachable`` marks "the other end could not be reached" (connection refused, reset,
    a name that does not resolve), which the handset commands report with exit status 3.
    """

    def __init__(self, message: str, code: int = 1, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.unreachable = unreachable


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if os.environ.get("USSDSIM_TOKEN"):
        return os.environ["USSDSIM_TOKEN"]
    try:
        return Path(args.token_file).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _call(
    args: argparse.Namespace, method: str, path: str, body: object = None, **query: object
) -> Any:
    """One request to the control API; its JSON answer, or CommandFailed."""
    base = str(args.api).rstrip("/")
    wanted = {name: str(value) for name, value in query.items() if value is not None}
    url = f"{base}/api/v1{path}" + (f"?{urllib.parse.urlencode(wanted)}" if wanted else "")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if method != "GET":
        token = _token(args)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    # No proxies: the API is on this machine, and an http_proxy variable must not reroute it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=args.timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise CommandFailed(_describe_refusal(exc)) from None
    except urllib.error.URLError as exc:
        raise CommandFailed(
            f"cannot reach the control API at {base}: {exc.reason}", unreachable=True
        ) from None
    except OSError as exc:
        raise CommandFailed(f"control API at {base}: {exc}", unreachable=True) from None
    except ValueError as exc:
        raise CommandFailed(f"control API at {base}: {exc}") from None


def _describe_refusal(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read().decode("utf-8"))
        code, message = answer["error"], answer["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} from the control API"
    line = f"{code}: {message}"
    if code == "unauthorized":
        line += " (pass --token, set USSDSIM_TOKEN, or run next to the state's .token file)"
    return line


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _print_clock(answer: Any, args: argparse.Namespace) -> None:
    if args.json:
        _print_json(answer)
        return
    line = f"{answer['iso']}  now={answer['now']}  offset={answer['offset']}"
    if "advanced" in answer:
        line += f"  advanced={answer['advanced']}  queued={answer['queued']}"
    print(line)


def _clock_show(args: argparse.Namespace) -> int:
    _print_clock(_call(args, "GET", "/clock"), args)
    return 0


def _clock_advance(args: argparse.Namespace) -> int:
    _print_clock(_call(args, "POST", "/clock/advance", {"seconds": args.duration}), args)
    return 0


def _path_msisdn(msisdn: str) -> str:
    return urllib.parse.quote(msisdn, safe="")


def _subscriber_show(args: argparse.Namespace) -> int:
    _print_json(_call(args, "GET", f"/subscribers/{_path_msisdn(args.msisdn)}"))
    return 0


def _subscriber_list(args: argparse.Namespace) -> int:
    answer = _call(
        args, "GET", "/subscribers", profile=args.profile, company=args.company, tariff=args.tariff
    )
    for subscriber in answer["subscribers"]:
        print(
            f"{subscriber['msisdn']}  {subscriber['profile']}  {subscriber['tariff']}"
            f"  {subscriber['status']}  balance={subscriber['balance']}"
        )
    return 0


def _subscriber_create(args: argparse.Namespace) -> int:
    body: dict[str, object] = {
        "msisdn": args.msisdn,
        "profile": args.profile,
        "tariff": args.tariff,
        "balance": args.balance,
    }
    for name in ("status", "region", "segment", "company", "owner_id"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.option:
        body["options"] = list(args.option)
    _print_json(_call(args, "POST", "/subscribers", body))
    return 0


def _usage(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"kind": args.kind, "amount": args.amount}
    if args.destination is not None:
        body["destination"] = args.destination
    if args.abroad is not None:
        body.update(abroad=True, country=args.abroad)
    _print_json(_call(args, "POST", f"/subscribers/{_path_msisdn(args.msisdn)}/usage", body))
    return 0


def _messages(args: argparse.Namespace) -> int:
    answer = _call(args, "GET", "/messages", msisdn=args.msisdn, limit=args.limit)
    if args.json:
        _print_json(answer)
        return 0
    for message in answer["messages"]:
        text = message["text"] if message["text"] is not None else f"<hex {message['hex']}>"
        print(
            f"{message['at']}  {message['direction']}  {message['channel']}"
            f"  {message['source']} -> {message['destination']}  {message['status']}  {text}"
        )
    return 0


def _duration(text: str) -> int:
    from services.clock import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``ussdsim clock advance: error: …``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api",
        default=os.environ.get("USSDSIM_API", DEFAULT_API),
        help=f"control API base URL (default $USSDSIM_API or {DEFAULT_API})",
    )
    common.add_argument("--token", help="API token (default $USSDSIM_TOKEN, then --token-file)")
    common.add_argument(
        "--token-file",
        default=f"{DEFAULT_STATE}.token",
        help=f"file serve writes the token to (default {DEFAULT_STATE}.token)",
    )
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    return common


def _add_client_commands(commands: Any) -> None:
    common = _client_options()
    clock = commands.add_parser("clock", help="show or move the simulator clock")
    clock_commands = clock.add_subparsers(dest="clock_command", required=True)
    show = clock_commands.add_parser("show", parents=[common], help="the simulated time")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    show.set_defaults(run=_clock_show)
    advance = clock_commands.add_parser(
        "advance", parents=[common], help="move the clock forward; due work fires in order"
    )
    advance.add_argument("duration", type=_duration, help="e.g. 1h30m, 40d, 90s or seconds")
    advance.add_argument("--json", action="store_true", help="print the API's JSON")
    advance.set_defaults(run=_clock_advance)

    subscriber = commands.add_parser("subscriber", help="read or create subscribers")
    subscriber_commands = subscriber.add_subparsers(dest="subscriber_command", required=True)
    sub_show = subscriber_commands.add_parser("show", parents=[common], help="one subscriber")
    sub_show.add_argument("msisdn")
    sub_show.set_defaults(run=_subscriber_show)
    sub_list = subscriber_commands.add_parser("list", parents=[common], help="subscribers")
    sub_list.add_argument("--profile")
    sub_list.add_argument("--company")
    sub_list.add_argument("--tariff")
    sub_list.set_defaults(run=_subscriber_list)
    create = subscriber_commands.add_parser("create", parents=[common], help="a new subscriber")
    create.add_argument("--msisdn", required=True, help="wire form, e.g. 79161112233")
    create.add_argument("--profile", required=True, help="mts, tele2ru, tele2kz or telenor")
    create.add_argument("--tariff", required=True, help="a tariff code of the profile")
    create.add_argument("--balance", type=int, default=0, help="minor units (kopecks…)")
    create.add_argument("--status", help="active, blocked_financial, blocked_voluntary")
    create.add_argument("--region")
    create.add_argument("--segment", help="private or business")
    create.add_argument("--company")
    create.add_argument("--owner-id", dest="owner_id")
    create.add_argument("--option", action="append", help="an option code (repeatable)")
    create.set_defaults(run=_subscriber_create)

    usage = commands.add_parser(
        "usage", parents=[common], help="make a subscriber consume (SPEC CU-01)"
    )
    usage.add_argument("msisdn")
    usage.add_argument("kind", choices=["data", "voice", "sms"])
    usage.add_argument("amount", type=int, help="MB, minutes or messages")
    usage.add_argument("--destination", help="voice destination code (default any)")
    usage.add_argument("--abroad", metavar="COUNTRY", help="used abroad, in this country (TR)")
    usage.set_defaults(run=_usage)

    messages = commands.add_parser("messages", parents=[common], help="a number's message log")
    messages.add_argument("msisdn")
    messages.add_argument("--limit", type=int)
    messages.add_argument("--json", action="store_true", help="print the API's JSON")
    messages.set_defaults(run=_messages)


# -- the handset: dial, sms, watch -----------------------------------------------------------

DEFAULT_SMPP = "127.0.0.1:2775"
#: messages per poll of ``watch``: the API's most (gateway.http.MAX_MESSAGES, not imported:
#: that would load twisted.web into every command)
WATCH_PAGE = 1000
_MSISDN = re.compile(r"[0-9]{5,15}")
_ADDRESS = re.compile(r"[0-9]{1,20}")
_USSD_CODE = re.compile(r"[*#][0-9*#+]*#")
_SPINNER = "|/-\\"
#: ussd_service_op values (SMPP 3.4 §5.3.2.44, GW-10) as the watch line names them
_USSD_OPS = {1: "dial", 2: "menu", 17: "final", 18: "answer", 32: "release"}


def _msisdn(text: str) -> str:
    if not _MSISDN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not an MSISDN: {text!r} (5 to 15 digits, international, e.g. 359881234567)"
        )
    return text


def _address(text: str) -> str:
    if not _ADDRESS.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a number: {text!r} (1 to 20 digits: an MSISDN or a short number like 125)"
        )
    return text


def _ussd_code(text: str) -> str:
    if not _USSD_CODE.fullmatch(text) or len(text) > 182:
        raise argparse.ArgumentTypeError(
            f"not a USSD code: {text!r} (digits, * and #, starting with * or # and ending"
            " with #, e.g. '*123#')"
        )
    return text


def _smpp_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:2775
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:2775)")
    return host, int(port)


def _seconds(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        low = "0 or more" if zero else "more than 0"
        raise argparse.ArgumentTypeError(f"not a number of seconds {low}: {text!r}")
    return value


def _wait_seconds(text: str) -> float:
    return _seconds(text, zero=True)


def _timeout_seconds(text: str) -> float:
    return _seconds(text, zero=False)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a count of 1 or more: {text!r}")
    return int(text)


def _cursor(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a message id (0 or more): {text!r}")
    return int(text)


def _answers(text: str) -> list[str]:
    # An empty list (--answers '') dials, shows the first screen and releases.
    return text.split(",") if text else []


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


class _Console:
    """Where the handset commands write: results on stdout; the progress spinner on stderr,
    only when stderr is a terminal (never in a pipe or a log); the answer prompt only when
    both ends are a terminal."""

    def __init__(self) -> None:
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr
        for stream in (self.out, self.err):
            # A terminal that cannot show Cyrillic gets '?' rather than a traceback.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                try:
                    reconfigure(errors="replace")
                except (ValueError, OSError, TypeError):
                    pass
        self._spins = _isatty(self.err)
        self.prompts = _isatty(self.out) and _isatty(sys.stdin)
        self._frame = 0
        self._spinning = False
        self._prompt = ""

    def line(self, text: str = "") -> None:
        self.clear()
        if self._prompt:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        if self._prompt:
            self.out.write(self._prompt)
        self.out.flush()

    def spin(self, label: str) -> None:
        if not self._spins:
            return
        self._frame += 1
        self.err.write(f"\r{_SPINNER[self._frame % len(_SPINNER)]} {label}\033[K")
        self.err.flush()
        self._spinning = True

    def clear(self) -> None:
        if self._spinning:
            self.err.write("\r\033[K")
            self.err.flush()
            self._spinning = False

    def prompt(self, text: str) -> None:
        if self.prompts:
            self._prompt = text
            self.out.write(text)
            self.out.flush()

    def answered(self, *, typed: bool = True) -> None:
        """The prompt is done with; with ``typed=False`` (EOF, Ctrl-C) nothing moved the
        cursor off its line, so this does."""
        if self._prompt and not typed:
            self.out.write("\n")
            self.out.flush()
        self._prompt = ""


class _Input(enum.Enum):
    """What a wait for the keyboard ended with, other than a line."""

    EOF = "eof"
    WOKEN = "woken"  # the gateway sent a screen meanwhile


class _Keyboard:
    """Lines typed by the user.  On a POSIX descriptor the wait is a ``select`` beside the
    SMPP socket, so SMS are shown and enquire_link answered while nobody types; any other
    stream (a ``StringIO``) is read with ``readline``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.fd: int | None = None
        if os.name == "posix":
            try:
                self.fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                self.fd = None
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = ""
        self._eof = False

    def read(self, other_fd: int, pump: Callable[[], bool]) -> str | _Input:
        """The next line; ``pump`` runs whenever ``other_fd`` is readable and ends the wait
        (``WOKEN``) by returning True."""
        while True:
            line, newline, rest = self._buffer.partition("\n")
            if newline:
                self._buffer = rest
                return line.removesuffix("\r")
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, ""
                    return line
                return _Input.EOF
            if self.fd is None or other_fd < 0:
                more = self.stream.readline()
                self._buffer += more
                self._eof = not more
                continue
            ready = select.select([self.fd, other_fd], [], [], 1.0)[0]
            if other_fd in ready and pump():
                return _Input.WOKEN
            if self.fd in ready:
                data = os.read(self.fd, 4096)
                self._buffer += self._decoder.decode(data, final=not data)
                self._eof = not data


class _Phone:
    """One handset on a bound client: shows what the gateway sends ``msisdn`` (screens,
    SMS rejoined, receipts) and plays one USSD dialogue (GW-10)."""

    def __init__(self, client: SmppClient, msisdn: str, console: _Console, timeout: float) -> None:
        from gateway.client import SmsJoiner

        self.client = client
        self.msisdn = msisdn
        self.console = console
        self.timeout = timeout
        self.joiner = SmsJoiner()
        self.open = False
        self.shown = 0

    def is_screen(self, item: Received) -> bool:
        return item.service_type == "USSD" and item.destination == self.msisdn

    # -- showing ---------------------------------------------------------------------------

    def show_screen(self, screen: Received) -> None:
        where = "" if screen.destination == self.msisdn else f" to {screen.destination}"
        kind = "final" if screen.ends_dialogue else "menu"
        self.console.line(f"[USSD from {screen.source}{where}, {kind}]")
        self.console.line(screen.text)
        self.shown += 1

    def show_arrived(self, *, screens: bool = False) -> None:
        """Print what has come for this handset, in order; screens too when ``screens``."""
        for item in list(self.client.inbox):
            if self.is_screen(item) and not screens:
                continue
            self.client.inbox.remove(item)
            where = "" if item.destination == self.msisdn else f" to {item.destination}"
            if item.service_type == "USSD":
                self.show_screen(item)
            elif item.is_receipt:
                from gateway.pdu import MessageState

                state = item.message_state
                try:
                    said = MessageState(state).name if state is not None else item.text
                except ValueError:
                    said = str(state)
                message = item.receipted_message_id or "?"
                self.console.line(f"[receipt from {item.source}{where}] {message}: {said}")
                self.shown += 1
            else:
                sms = self.joiner.add(item, time.monotonic())
                if sms is not None:
                    self.console.line(f"[SMS from {sms.source}{where}] {sms.text}")
                    self.shown += 1

    def listen(self, seconds: float, count: int | None = None) -> None:
        """Show what comes within ``seconds`` (until ``count`` things were shown)."""
        from gateway.client import ClientError

        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                if count is not None and self.shown >= count:
                    break
                self.console.spin("listening")
                self.client.read_one(min(0.1, remaining))
                self.show_arrived(screens=True)
        except ClientError:
            pass  # the gateway went away: what came has been shown
        self.console.clear()
        for gone in self.joiner.incomplete(math.inf):
            source = gone.key[0] if isinstance(gone.key, tuple) else gone.key
            self.console.line(
                f"[SMS from {source}: only part(s) {','.join(map(str, gone.received))}"
                f" of {gone.total} arrived]"
            )

    # -- the dialogue -----------------------------------------------------------------------

    def send(self, text: str, op: int, destination: str = "USSD") -> None:
        from gateway.client import ClientError, status_name

        try:
            self.client.send_ussd(self.msisdn, text, op=op, destination=destination)
        except ClientError as exc:
            if exc.status > 0:
                raise CommandFailed(
                    f"the gateway refused {text!r}: {status_name(exc.status)}"
                ) from None
            raise CommandFailed(str(exc)) from None

    def await_screen(self, after: str) -> Received:
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.console.clear()
                raise CommandFailed(f"no USSD screen within {self.timeout:g} s after {after}")
            self.console.spin(f"waiting for the gateway after {after}")
            found = self.client.next_message(self.is_screen, timeout=min(0.1, remaining))
            self.show_arrived()  # SMS that came first are shown first
            if found is not None:
                self.console.clear()
                return found

    def release(self, why: str | None) -> None:
        """End the open dialogue from the handset (op 32, GW-10); say so unless ``why`` is
        None (a failure, which stderr tells)."""
        from gateway.client import RELEASE, ClientError

        if not self.open:
            return
        self.open = False
        try:
            self.client.send_ussd(self.msisdn, "", op=RELEASE)
        except ClientError:
            pass  # the gateway gone or refusing: the dialogue dies with the session
        if why is not None:
            self.console.line(f"[dialogue released: {why}]")

    def ask(self, keyboard: _Keyboard) -> str | Received | None:
        """The user's next non-empty answer, a screen that came meanwhile, or None at EOF."""

        def pump() -> bool:
            self.client.read_one(0.5)
            self.show_arrived()
            return any(self.is_screen(item) for item in self.client.inbox)

        while True:
            self.console.prompt("> ")
            got = keyboard.read(self.client.fileno(), pump)
            self.console.answered(typed=got is not _Input.EOF)
            if got is _Input.EOF:
                return None
            if got is _Input.WOKEN:
                screen = self.client.next_message(self.is_screen)
                if screen is not None:
                    return screen
                continue
            if got.strip():  # an empty line is a slip of the Enter key, not an abort
                if not _isatty(keyboard.stream):
                    self.console.line(f"> {got}")  # no terminal echoed it: the transcript does
                return got

    def dial(
        self, code: str, answers: deque[str] | None, keyboard: _Keyboard | None, wait: float
    ) -> int:
        """Dial ``code`` and play the dialogue: the next scripted answer, or the keyboard's."""
        from gateway.client import PSSR_INDICATION, USSR_CONFIRM, code_destination

        self.send(code, PSSR_INDICATION, code_destination(code))
        self.open = True
        screen = self.await_screen(code)
        while True:
            self.show_screen(screen)
            if screen.ends_dialogue:
                self.open = False
                self.console.line("[dialogue ended by the gateway]")
                self.listen(wait)
                if answers:
                    raise CommandFailed(
                        f"the dialogue ended with {len(answers)} answer(s) unused:"
                        f" {','.join(answers)}"
                    )
                return EXIT_OK
            if answers is not None:
                if not answers:
                    self.release("no answers left")
                    self.listen(wait)
                    return EXIT_OK
                text = answers.popleft()
                self.console.line(f"> {text}")
            else:
                assert keyboard is not None
                got = self.ask(keyboard)
                if got is None:
                    self.release("end of input")
                    self.listen(wait)
                    return EXIT_OK
                if not isinstance(got, str):
                    screen = got
                    continue
                text = got
            self.send(text, USSR_CONFIRM)
            screen = self.await_screen(repr(text))


def _bind(args: argparse.Namespace, msisdn: str, console: _Console) -> SmppClient:
    """A transceiver bound to receive for ``msisdn`` only (its address_range), so the
    handset neither takes other numbers' messages from another ESME nor is shown them."""
    from gateway.client import ClientError, SmppClient, status_name

    if args.system_id is None or args.password is None:
        from gateway.config import DEFAULT_ACCOUNTS

        if args.system_id is None:
            args.system_id = DEFAULT_ACCOUNTS[0].system_id
        if args.password is None:
            # A bundled account's own password (kannel/kannel too); none for another account.
            known = {a.system_id: a.password for a in DEFAULT_ACCOUNTS}
            args.password = known.get(args.system_id, "")
    host, port = args.smpp
    client = SmppClient(
        host,
        port,
        system_id=args.system_id,
        password=args.password,
        address_range=re.escape(msisdn),
        timeout=args.timeout,
    )
    console.spin(f"binding to {host}:{port}")
    try:
        client.connect()
    except ClientError as exc:
        if exc.status > 0:
            raise CommandFailed(
                f"bind refused at {host}:{port} for system_id {args.system_id!r}:"
                f" {status_name(exc.status)} (--system-id/--password, $USSDSIM_SYSTEM_ID,"
                " $USSDSIM_PASSWORD)",
                EXIT_UNREACHABLE,
            ) from None
        raise CommandFailed(
            f"{exc} (is 'ussdsim serve' running there? --smpp or $USSDSIM_SMPP)",
            EXIT_UNREACHABLE,
        ) from None
    finally:
        console.clear()
    return client


def _dial(args: argparse.Namespace) -> int:
    from gateway.client import ClientError

    console = _Console()
    scripted = args.answers is not None
    client = _bind(args, args.msisdn, console)
    phone = _Phone(client, args.msisdn, console, args.timeout)
    try:
        return phone.dial(
            args.code,
            deque(args.answers) if scripted else None,
            None if scripted else _Keyboard(sys.stdin),
            args.wait,
        )
    except KeyboardInterrupt:
        console.clear()
        console.answered(typed=False)
        phone.release("interrupted")
        # Hanging up by hand is how an interactive dialogue may end; a script cut short is not.
        return EXIT_INTERRUPTED if scripted else EXIT_OK
    except ClientError as exc:
        phone.open = False  # the session is gone or broken: nothing to release on it
        raise CommandFailed(str(exc)) from None
    except CommandFailed:
        phone.release(None)  # no screen in time, say: leave no dialogue hanging
        raise
    finally:
        console.clear()
        client.close()


def _sms(args: argparse.Namespace) -> int:
    from gateway.client import ClientError, status_name

    console = _Console()
    client = _bind(args, args.source, console)
    phone = _Phone(client, args.source, console, args.timeout)
    try:
        try:
            ids = client.send_sms(
                args.source,
                args.destination,
                args.text,
                registered_delivery=1 if args.receipt else 0,
            )
        except ClientError as exc:
            if exc.status > 0:
                raise CommandFailed(
                    f"the gateway refused the SMS: {status_name(exc.status)}"
                ) from None
            raise CommandFailed(str(exc)) from None
        parts = f"{len(ids)} parts" if len(ids) > 1 else "1 part"
        console.line(
            f"[submitted {args.source} -> {args.destination}: {parts}, id {', '.join(ids)}]"
        )
        phone.listen(args.wait, args.count)
        if args.count is not None and phone.shown < args.count:
            raise CommandFailed(f"{phone.shown} of {args.count} replies within {args.wait:g} s")
        return EXIT_OK
    finally:  # Ctrl-C goes on to main: "interrupted", 130
        console.clear()
        client.close()


def _watch_line(message: dict[str, Any]) -> str:
    at = dt.datetime.fromtimestamp(message["at"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if message["kind"] == "receipt":
        what = "receipt"
    elif message["channel"] == "ussd":
        op = message.get("ussd_op")
        what = "USSD" if op is None else f"USSD {_USSD_OPS.get(op, f'op {op}')}"
    else:
        what = "SMS"
    if message.get("part"):
        what += f" {message['part'][0]}/{message['part'][1]}"
    text = message["text"] if message["text"] is not None else f"<hex {message['hex']}>"
    # One line per message: a menu's line breaks are shown as \n.
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return (
        f"{at}  {message['direction'].upper()}  {message['source']} -> "
        f"{message['destination']}  {what}  {text}"
    )


def _watch(args: argparse.Namespace) -> int:
    console = _Console()

    def fetch(after: int, limit: int) -> Any:
        try:
            return _call(args, "GET", "/messages", after=after, msisdn=args.msisdn, limit=limit)
        except CommandFailed as exc:
            if exc.unreachable:
                raise CommandFailed(str(exc), EXIT_UNREACHABLE) from None
            raise

    stop_at = None if args.duration is None else time.monotonic() + args.duration
    shown = 0
    try:
        cursor = args.after if args.after is not None else int(fetch(0, 1)["last_id"])
        while True:
            answer = fetch(cursor, WATCH_PAGE)
            for message in answer["messages"]:
                if args.json:
                    console.line(json.dumps(message, ensure_ascii=False))
                else:
                    console.line(_watch_line(message))
                shown += 1
                if args.count is not None and shown >= args.count:
                    return EXIT_OK
            cursor = int(answer["next"])
            if len(answer["messages"]) == WATCH_PAGE:
                continue  # more are waiting: no pause
            pause_until = time.monotonic() + args.interval
            while (now := time.monotonic()) < pause_until:
                if stop_at is not None and now >= stop_at:
                    return EXIT_OK
                console.spin("watching")
                time.sleep(min(0.1, pause_until - now))
            if stop_at is not None and time.monotonic() >= stop_at:
                return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how a watch ends
    finally:
        console.clear()


def _add_handset_commands(commands: Any) -> None:
    smpp = argparse.ArgumentParser(add_help=False)
    smpp.add_argument(
        "--smpp",
        type=_smpp_address,
        default=os.environ.get("USSDSIM_SMPP", DEFAULT_SMPP),
        metavar="HOST:PORT",
        help=f"the gateway's SMPP port (default $USSDSIM_SMPP or {DEFAULT_SMPP})",
    )
    # The bundled account is looked up only when used: gateway.config is slow to import.
    smpp.add_argument(
        "--system-id",
        default=os.environ.get("USSDSIM_SYSTEM_ID"),
        help="ESME account to bind as (default $USSDSIM_SYSTEM_ID or the bundled tester)",
    )
    smpp.add_argument(
        "--password",
        default=os.environ.get("USSDSIM_PASSWORD"),
        help="its password (default $USSDSIM_PASSWORD, else a bundled account's own)",
    )
    smpp.add_argument(
        "--timeout",
        type=_timeout_seconds,
        default=10.0,
        help="seconds to wait for the bind and for each screen (10)",
    )

    dial = commands.add_parser(
        "dial",
        parents=[smpp],
        help="dial a USSD code as a subscriber and play the dialogue",
        description="Dial a USSD code as MSISDN: each screen is shown and the answer read"
        " from the terminal (or --answers); SMS that arrive for MSISDN are shown too.",
    )
    dial.add_argument("msisdn", type=_msisdn, metavar="MSISDN", help="e.g. 359881000001")
    dial.add_argument("code", type=_ussd_code, metavar="CODE", help="e.g. '*123#'")
    dial.add_argument(
        "--answers",
        type=_answers,
        metavar="A,B,...",
        help="answer the screens with these, in order, instead of the keyboard",
    )
    dial.add_argument(
        "--wait",
        type=_wait_seconds,
        default=1.0,
        help="seconds to keep showing SMS after the dialogue ends (1)",
    )
    dial.set_defaults(run=_dial)

    sms = commands.add_parser(
        "sms",
        parents=[smpp],
        help="send an SMS as a subscriber and show the replies",
        description="Submit TEXT from FROM to TO (split and coded as needed) and show every"
        " SMS and receipt for FROM that arrives within --wait seconds.",
    )
    sms.add_argument("source", type=_msisdn, metavar="FROM", help="the sender's MSISDN")
    sms.add_argument("destination", type=_address, metavar="TO", help="MSISDN or short number")
    sms.add_argument("text", metavar="TEXT")
    sms.add_argument(
        "--wait", type=_wait_seconds, default=3.0, help="seconds to wait for replies (3)"
    )
    sms.add_argument(
        "--count",
        type=_count,
        help="stop after this many replies; fewer within --wait is a failure",
    )
    sms.add_argument("--receipt", action="store_true", help="ask for a delivery receipt")
    sms.set_defaults(run=_sms)

    watch = commands.add_parser(
        "watch",
        parents=[_client_options()],
        help="stream every MO and MT as it happens (the control API's log)",
        description="Show each message the gateway logs, one line each, until Ctrl-C.",
    )
    watch.add_argument("--msisdn", type=_address, help="only messages from or to this number")
    watch.add_argument("--json", action="store_true", help="JSON lines (the API's entries)")
    watch.add_argument("--count", type=_count, help="stop after this many messages")
    watch.add_argument(
        "--for",
        dest="duration",
        type=_timeout_seconds,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    watch.add_argument(
        "--after",
        type=_cursor,
        metavar="ID",
        help="start after this message id (0: the whole log); default: only new ones",
    )
    watch.add_argument(
        "--interval",
        type=_timeout_seconds,
        default=0.5,
        help="seconds between polls of the API (0.5)",
    )
    watch.set_defaults(run=_watch)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ussdsim",
        description="USSD/SMS gateway simulator: an SMPP 3.4 SMSC and four operators.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulator (SMPP 127.0.0.1:2775)")
    serve.add_argument("--host", help="SMPP interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="SMPP port (default 2775; 0 picks a free one)")
    serve.add_argument("--http-port", type=int, help="control API port (default 8775)")
    serve.add_argument("--state", help="SQLite state file (default ./ussdsim.sqlite3)")
    serve.add_argument("--config", help="YAML configuration file (ESME accounts, timers)")
    serve.add_argument("--json", action="store_true", help="log JSON lines")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="info logs every PDU (GW-12); debug adds message bodies",
    )
    serve.set_defaults(run=_serve)
    _add_client_commands(commands)
    _add_handset_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its one-line usage error itself
        return int(exc.code or 0)
    if not logging.getLogger("smpp").handlers:
        # smpplib logs warnings (a refused connection, an unclosed client) that Python's
        # last-resort handler would print to stderr beside our one-line error.
        logging.getLogger("smpp").addHandler(logging.NullHandler())
    try:
        result: int = args.run(args)
    except CommandFailed as exc:
        print(f"ussdsim: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.unreachable else exc.code
    except KeyboardInterrupt:
        print("ussdsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``ussdsim subscriber show … | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
