"""The ``ussdsim`` command line: ``serve`` runs the simulator; the other commands are thin
clients of a running one's control API (``gateway.http``), over stdlib ``urllib``.

``clock show|advance 1h30m``, ``subscriber show|list|create``, ``usage`` and ``messages``
talk to ``--api`` (default ``$USSDSIM_API`` or ``http://127.0.0.1:8775``).  Commands that
change something send the API token: ``--token``, else ``$USSDSIM_TOKEN``, else the token
file ``serve`` writes beside its state file (``--token-file``, default
``ussdsim.sqlite3.token``).  Errors are one line on stderr and a non-zero exit status, never
a traceback: 2 for bad arguments, 1 for a failure to do what was asked (the API's error
code and message, or why it could not be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_FAILURE = 1
EXIT_USAGE = 2
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
    """What went wrong, as the one line the user sees."""


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
        raise CommandFailed(f"cannot reach the control API at {base}: {exc.reason}") from None
    except (OSError, ValueError) as exc:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its one-line usage error itself
        return int(exc.code or 0)
    try:
        result: int = args.run(args)
    except CommandFailed as exc:
        print(f"ussdsim: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (``ussdsim subscriber show … | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
