"""The ``ussdsim`` command line: ``serve`` runs the simulator; the other commands are thin
clients of a running one.

Errors are one line on stderr and a non-zero exit status, never a traceback:
2 for bad arguments, 1 for a failure to do what was asked.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

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
        d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]

    # SIGINT/SIGTERM: unbind, flush, then stop the reactor (Twisted's own handler would
    # stop the reactor before the sessions are told).
    reactor.callWhenRunning(  # type: ignore[attr-defined]
        lambda: (signal.signal(signal.SIGINT, lambda *a: reactor.callFromThread(stop)),  # type: ignore[attr-defined]
                 signal.signal(signal.SIGTERM, lambda *a: reactor.callFromThread(stop)))  # type: ignore[attr-defined]
    )
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined]
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ussdsim", description="USSD/SMS gateway simulator: an SMPP 3.4 SMSC and four operators."
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its one-line usage error itself
        return int(exc.code or 0)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
