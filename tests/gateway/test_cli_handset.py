"""Unit tests of the handset side of the CLI without a gateway: argument checks, the watch
line, the keyboard reader, the spinner's manners, and ``gateway.client.SmsJoiner`` (GW-09)
that rejoins the SMS the handset shows."""

from __future__ import annotations

import argparse
import io
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import cli, coding
from gateway.client import Received, SmsJoiner, status_name
from gateway.http import MAX_MESSAGES

# -- arguments --------------------------------------------------------------------------------


@settings(max_examples=60)
@given(st.text(alphabet="0123456789", min_size=5, max_size=15))
def test_every_5_to_15_digit_msisdn_is_taken(msisdn: str) -> None:
    """An MSISDN is 5 to 15 digits, as dialled in international form."""
    assert cli._msisdn(msisdn) == msisdn


@settings(max_examples=60)
@given(st.text(min_size=1, max_size=20).filter(lambda t: not (t.isascii() and t.isdigit())))
def test_anything_but_digits_is_not_an_msisdn(text: str) -> None:
    """A sign, a letter, a space: refused with the module's own message."""
    with pytest.raises(argparse.ArgumentTypeError, match="not an MSISDN"):
        cli._msisdn(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:2775", ("127.0.0.1", 2775)),
        ("[::1]:2775", ("::1", 2775)),
        ("gw.lab:1", ("gw.lab", 1)),
    ],
)
def test_smpp_host_and_port(text: str, address: tuple[str, int]) -> None:
    """HOST:PORT, with an IPv6 host in brackets."""
    assert cli._smpp_address(text) == address


@pytest.mark.parametrize("text", ["localhost", ":2775", "h:0", "h:65536", "h:-1", "h:x", ""])
def test_bad_smpp_addresses_are_refused(text: str) -> None:
    """No port, no host, a port out of range or not a number: refused."""
    with pytest.raises(argparse.ArgumentTypeError, match="not HOST:PORT"):
        cli._smpp_address(text)


@pytest.mark.parametrize("code", ["*123#", "#100#", "*#06#", "*434*1*79161234567#", "*100*+7#"])
def test_ussd_codes_that_dial(code: str) -> None:
    """GW-10: a code starts with * or #, ends with #, and holds digits, * # and +."""
    assert cli._ussd_code(code) == code


@pytest.mark.parametrize("code", ["123", "*123", "*12 3#", "*ДА#", "#", "*" + "1" * 182 + "#"])
def test_strings_that_are_not_ussd_codes(code: str) -> None:
    """GW-10: no leading * or #, no closing #, other characters, or over 182: refused."""
    with pytest.raises(argparse.ArgumentTypeError, match="not a USSD code"):
        cli._ussd_code(code)


def test_answers_split_on_commas_and_an_empty_list_is_none() -> None:
    """--answers 5,3,0898123456,G,30 is five answers; '' is none; ',' is two empty ones."""
    assert cli._answers("5,3,0898123456,G,30") == ["5", "3", "0898123456", "G", "30"]
    assert cli._answers("") == []
    assert cli._answers(",") == ["", ""]


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_is_a_positive_finite_number_of_seconds(text: str) -> None:
    """--timeout and --for take seconds above 0; --wait also takes 0."""
    with pytest.raises(argparse.ArgumentTypeError):
        cli._timeout_seconds(text)
    if text == "0":
        assert cli._wait_seconds(text) == 0.0


def test_a_watch_page_is_the_apis_largest() -> None:
    """watch asks for as many messages a poll as the API gives (kept apart to import light)."""
    assert cli.WATCH_PAGE == MAX_MESSAGES


def test_status_names_come_from_smpp_3_4() -> None:
    """SMPP 3.4 §5.1.3 names a status; a vendor's one is shown in hex."""
    assert (status_name(0x0E), status_name(0x58)) == ("ESME_RINVPASWD", "ESME_RTHROTTLED")
    assert status_name(0x400) == "0x00000400"


# -- the watch line ---------------------------------------------------------------------------


def entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "at": 1_795_333_491,
        "direction": "mt",
        "channel": "sms",
        "ussd_op": None,
        "kind": "reply",
        "source": "125",
        "destination": "359881000001",
        "text": "hi",
        "hex": None,
        "part": None,
    }
    return base | fields


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({}, "MT  125 -> 359881000001  SMS  hi"),
        ({"channel": "ussd", "kind": "ussd", "ussd_op": 2, "text": "A\n1 B"}, "USSD menu  A\\n1 B"),
        ({"channel": "ussd", "kind": "ussd", "ussd_op": 17}, "USSD final  hi"),
        ({"channel": "ussd", "kind": "ussd", "ussd_op": 99}, "USSD op 99  hi"),
        (
            {"channel": "ussd", "kind": "ussd_mo", "direction": "mo"},
            "MO  125 -> 359881000001  USSD  hi",
        ),
        ({"kind": "receipt", "text": "id:1 stat:DELIVRD"}, "receipt  id:1 stat:DELIVRD"),
        ({"part": [1, 2]}, "SMS 1/2  hi"),
        ({"text": None, "hex": "00ff"}, "SMS  <hex 00ff>"),
        ({"text": "a\r\nb"}, "SMS  a\\r\\nb"),
    ],
)
def test_a_watch_line_is_one_line_with_time_direction_addresses_kind_and_text(
    fields: dict[str, object], shown: str
) -> None:
    """time, direction, from -> to, USSD op / SMS / receipt, text; breaks shown as \\n."""
    line = cli._watch_line(entry(**fields))
    assert line.startswith("2026-11-22T07:44:51Z  ")  # UTC, from the log's epoch seconds
    assert line.endswith(shown) and "\n" not in line


# -- the keyboard -----------------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[io.TextIOWrapper, int]]:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, encoding="utf-8") as reader:
        yield reader, write_end
    try:
        os.close(write_end)
    except OSError:
        pass


def never(_: object = None) -> bool:
    raise AssertionError("the other descriptor was not ready")


def test_keyboard_lines_from_a_descriptor_survive_split_utf8_and_crlf(
    pipe: tuple[io.TextIOWrapper, int],
) -> None:
    """Bytes as they come: a character cut across two reads, CRLF, a last line without a
    newline, then EOF."""
    reader, write_end = pipe
    other_read, other_write = os.pipe()
    try:
        keyboard = cli._Keyboard(reader)
        assert keyboard.fd == reader.fileno()
        data = "ДА\r\nG,30".encode()
        os.write(write_end, data[:1])
        os.write(write_end, data[1:])
        os.close(write_end)
        assert keyboard.read(other_read, never) == "ДА"
        assert keyboard.read(other_read, never) == "G,30"
        assert keyboard.read(other_read, never) is cli._Input.EOF
    finally:
        os.close(other_read)
        os.close(other_write)


def test_keyboard_wakes_when_the_socket_brings_a_screen(
    pipe: tuple[io.TextIOWrapper, int],
) -> None:
    """The other descriptor readable and ``pump`` saying a screen came: WOKEN, no line."""
    reader, _ = pipe
    other_read, other_write = os.pipe()
    try:
        os.write(other_write, b"!")
        pumped: list[bytes] = []

        def pump() -> bool:
            pumped.append(os.read(other_read, 1))
            return True

        assert cli._Keyboard(reader).read(other_read, pump) is cli._Input.WOKEN
        assert pumped == [b"!"]
    finally:
        os.close(other_read)
        os.close(other_write)


def test_keyboard_without_a_descriptor_reads_lines() -> None:
    """A stream with no descriptor (StringIO) is read with readline."""
    keyboard = cli._Keyboard(io.StringIO("5\n3"))
    assert keyboard.fd is None
    assert [keyboard.read(-1, never) for _ in range(3)] == ["5", "3", cli._Input.EOF]


# -- the spinner ------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_the_spinner_turns_on_a_terminal_only(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress goes to stderr when it is a terminal; into a pipe or a file, never."""
    err = Terminal() if tty else io.StringIO()
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr("sys.stdout", out)
    console = cli._Console()
    console.spin("waiting")
    console.line("[USSD from 123, menu]")
    assert out.getvalue() == "[USSD from 123, menu]\n"
    if tty:
        assert err.getvalue() == "\r/ waiting\033[K\r\033[K"
    else:
        assert err.getvalue() == ""


def test_the_prompt_shows_only_when_stdin_and_stdout_are_terminals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A piped stdin gets no '> ' prompt (the CLI echoes the answer instead)."""
    out = Terminal()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stdin", io.StringIO())
    console = cli._Console()
    console.prompt("> ")
    assert out.getvalue() == ""
    monkeypatch.setattr("sys.stdin", Terminal())
    console = cli._Console()
    console.prompt("> ")
    console.line("[SMS from 125] hi")  # the prompt is put back under what came
    console.answered(typed=False)
    assert out.getvalue() == "> \r\033[K[SMS from 125] hi\n> \n"


# -- waiting for a screen ---------------------------------------------------------------------


class Silent:
    """A gateway that accepts everything and never answers."""

    def __init__(self) -> None:
        self.inbox: deque[Received] = deque()

    def next_message(self, predicate: Callable[[Received], bool], timeout: float) -> None:
        return None


def test_gw_10_no_screen_within_the_timeout_is_a_one_line_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GW-10: a gateway silent past --timeout: CommandFailed saying after what, exit 1."""
    monkeypatch.setattr("sys.stdout", io.StringIO())
    fake: Any = Silent()
    phone = cli._Phone(fake, "359881000001", cli._Console(), timeout=0.05)
    with pytest.raises(cli.CommandFailed) as failed:
        phone.await_screen("'5'")
    assert str(failed.value) == "no USSD screen within 0.05 s after '5'"
    assert failed.value.code == cli.EXIT_FAILURE


# -- SmsJoiner (GW-09) ------------------------------------------------------------------------


def parts_of(text: str, reference: int = 7) -> list[Received]:
    """The deliver_sm a handset gets for ``text``, as ``gateway.client`` decodes them."""
    parts = coding.split_text(text, reference=reference)
    if len(parts) == 1:
        (part,) = parts
        body = part.short_message
        return [
            Received(
                source="125",
                destination="359881000001",
                text=coding.decode_text(body, part.data_coding),
                data_coding=part.data_coding,
                esm_class=0,
                short_message=body,
            )
        ]
    return [
        Received(
            source="125",
            destination="359881000001",
            text="",  # a part's own text is not what the joiner reads
            data_coding=part.data_coding,
            esm_class=0x40,
            short_message=part.short_message,
            concat=coding.parse_udh(part.short_message)[0],
        )
        for part in parts
    ]


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=400), st.randoms(use_true_random=False))
def test_gw_09_parts_in_any_order_come_back_whole_once(text: str, rng: object) -> None:
    """GW-09: the parts of any text, shuffled, give the text once, after the last part."""
    parts = parts_of(text)
    rng.shuffle(parts)  # type: ignore[attr-defined]
    joiner = SmsJoiner()
    got = [joiner.add(part, now=0.0) for part in parts]
    assert all(g is None for g in got[:-1])
    whole = got[-1]
    assert whole is not None and whole.text == text and whole.parts == len(parts)
    assert joiner.incomplete(math.inf) == []


def test_gw_09_sar_parts_and_whole_messages_and_the_incomplete() -> None:
    """GW-09: sar_* parts are joined like UDH ones; a whole SMS passes at once; parts still
    missing are reported by incomplete()."""
    joiner = SmsJoiner()
    sar = [
        Received(
            source="434",
            destination="79160000001",
            text=piece,
            data_coding=0,
            esm_class=0,
            short_message=piece.encode(),
            concat=coding.Concat(9, 2, n),
        )
        for n, piece in ((2, "world"), (1, "hello "))
    ]
    assert joiner.add(sar[0], now=0.0) is None
    joined = joiner.add(sar[1], now=0.0)
    assert joined is not None and joined.text == "hello world"
    whole = Received(
        source="111", destination="79160000001", text="ok", data_coding=0, esm_class=0,
        short_message=b"ok",
    )  # fmt: skip
    assert joiner.add(whole, now=0.0) is not None
    first, _ = parts_of("x" * 200, reference=3)
    assert joiner.add(first, now=0.0) is None
    (gone,) = joiner.incomplete(math.inf)
    assert (gone.key, gone.total, gone.received) == (("125", "359881000001"), 2, (1,))
