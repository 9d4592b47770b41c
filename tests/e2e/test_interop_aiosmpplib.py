"""aiosmpplib (PyPI, asyncio) as an independent client of the live gateway (issue 2's "one
more independent client"): a USSD dial with the TLVs as aiosmpplib spells them, an SMS to
an unknown short number, a person-to-person SMS between two aiosmpplib binds with the
receipt aiosmpplib correlates itself, and a long Cyrillic SMS both as UDH parts and as
message_payload (GW-01, GW-05, GW-06, GW-07, GW-08, GW-09, GW-10).

aiosmpplib runs its own asyncio loop in a worker thread, so the reactor keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import pytest
from aiosmpplib import (  # type: ignore[import-untyped]
    ESME,
    AbstractHook,
    BindTransceiverResp,
    DeliverSm,
    OptionalParam,
    PhoneNumber,
    SmppCommandStatus,
    SmppMessage,
    SmppSessionState,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.state import (  # type: ignore[import-untyped]
    ITS_SESSION_INFO,
    MESSAGE_STATE,
    RECEIPTED_MESSAGE_ID,
    USSD_SERVICE_OP,
)

from gateway.app import UNKNOWN_SERVICE_TEXT, Gateway
from gateway.client import code_destination
from tests.e2e.interop import (
    LONG_CYRILLIC,
    PSSR_INDICATION,
    PSSR_RESPONSE,
    STRANGER_A,
    STRANGER_B,
    UNKNOWN_SHORT_NUMBER,
    UNKNOWN_USSD,
    off_reactor,
    reactor_test,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

T = TypeVar("T")
WAIT = 5.0  # seconds for any one answer from the gateway
UDHI = 0x40


class Recorder(AbstractHook):  # type: ignore[misc]  # aiosmpplib ships no type hints marker
    """aiosmpplib's hook: every PDU it received (parsed or not) and every sending error."""

    def __init__(self) -> None:
        self.inbox: list[tuple[SmppMessage | None, bytes]] = []
        self.pdus: list[bytes] = []
        self.errors: list[Exception] = []
        self.runner: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    def watch(self, runner: asyncio.Task[None]) -> None:
        """Wake waiters when aiosmpplib's own task ends, so its failure is not a timeout."""
        self.runner = runner
        runner.add_done_callback(lambda _: self._arrived.set())

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        pass  # what aiosmpplib sends is checked by its answers

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        self.inbox.append((smpp_message, pdu))
        self.pdus.append(pdu)
        self._arrived.set()

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self.errors.append(error)
        self._arrived.set()

    async def expect(self, predicate: Callable[[SmppMessage], bool]) -> SmppMessage:
        """The first received message (already or within ``WAIT`` s) that matches; removed."""

        async def scan() -> SmppMessage:
            while True:
                for index, (message, _) in enumerate(self.inbox):
                    if message is not None and predicate(message):
                        del self.inbox[index]
                        return message
                assert not self.errors, self.errors
                if self.runner is not None and self.runner.done():
                    failure = None if self.runner.cancelled() else self.runner.exception()
                    raise AssertionError(f"aiosmpplib's ESME task ended: {failure!r}")
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(scan(), WAIT)


class Problems(logging.Handler):
    """aiosmpplib's warnings and errors (an uncorrelated response, an unparsable PDU …)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@attrs.frozen(kw_only=True)
class Account:
    """Who binds, and which subscribers it serves (its bind address_range, GW-08)."""

    system_id: str
    password: str
    address_range: str


SENDER = Account(system_id="tester", password="secret", address_range=STRANGER_A)
RECEIVER = Account(system_id="other", password="other", address_range=STRANGER_B)


class Handset:
    """One aiosmpplib ESME bound to the gateway as transceiver, with what it saw."""

    def __init__(self, address: tuple[str, int], account: Account) -> None:
        self.hook, self.problems = Recorder(), Problems()
        self.esme = ESME(
            smsc_host=address[0],
            smsc_port=address[1],
            system_id=account.system_id,
            password=account.password,
            address_range=account.address_range,
            hook=self.hook,
            log_level=logging.WARNING,
            log_handler=self.problems,
            socket_timeout=WAIT,
        )
        self.runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.runner = asyncio.create_task(self.esme.start())
        self.hook.watch(self.runner)
        bind = await self.hook.expect(lambda m: isinstance(m, BindTransceiverResp))
        assert bind.command_status == SmppCommandStatus.ESME_ROK

    async def stop(self) -> None:
        """Unbind; aiosmpplib must have logged no problem (an uncorrelated response …)."""
        assert self.runner is not None
        try:
            await asyncio.wait_for(self.esme.stop(), WAIT)
            await asyncio.wait_for(self.runner, WAIT)
        finally:
            if not self.runner.done():
                self.runner.cancel()
                await asyncio.gather(self.runner, return_exceptions=True)
        # aiosmpplib drops its socket right after sending unbind, so it never reads our
        # unbind_resp (its kernel answers that with RST); the smpplib tests check GW-02.
        assert self.esme.session_state == SmppSessionState.CLOSED
        assert self.problems.messages == []

    async def submit(self, message: SubmitSm) -> SubmitSmResp:
        """Queue a submit_sm and wait for its (last) submit_sm_resp, found by log_id."""
        await self.esme.broker.enqueue(message)
        resp = await self.hook.expect(
            lambda m: isinstance(m, SubmitSmResp) and m.log_id == message.log_id
        )
        assert isinstance(resp, SubmitSmResp)
        return resp

    async def delivered(self, predicate: Callable[[DeliverSm], bool]) -> DeliverSm:
        message = await self.hook.expect(lambda m: isinstance(m, DeliverSm) and predicate(m))
        assert isinstance(message, DeliverSm)
        return message

    def raw_received(self, command_id: int) -> list[bytes]:
        """Every received PDU with that command id, as bytes (parts included)."""
        return [pdu for pdu in self.hook.pdus if int.from_bytes(pdu[4:8]) == command_id]


@asynccontextmanager
async def bound(address: tuple[str, int], *accounts: Account) -> AsyncIterator[list[Handset]]:
    """Bind every account at once; unbind them all at once on the way out."""
    handsets = [Handset(address, account) for account in accounts]
    try:
        await asyncio.gather(*(h.start() for h in handsets))
        yield handsets
    finally:
        results = await asyncio.gather(
            *(h.stop() for h in handsets if h.runner is not None), return_exceptions=True
        )
    for result in results:
        if isinstance(result, BaseException):
            raise result


def in_asyncio(scenario: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run an asyncio scenario to completion on a fresh loop (called in a worker thread)."""
    return asyncio.run(scenario(*args))


def params(message: SmppMessage) -> dict[int, Any]:
    return {p.tag: p.value for p in getattr(message, "optional_params", None) or []}


# -- scenarios (aiosmpplib's own loop) ---------------------------------------------------------


async def dial_unknown_code(address: tuple[str, int]) -> tuple[SubmitSmResp, DeliverSm]:
    async with bound(address, SENDER) as (handset,):
        dial = SubmitSm(
            short_message=UNKNOWN_USSD,
            source=PhoneNumber(STRANGER_A),
            destination=PhoneNumber(code_destination(UNKNOWN_USSD)),
            service_type="USSD",
            registered_delivery=0,
            log_id="dial",
            # aiosmpplib types every TLV it does not know as an octet string: a one-char
            # str is the one-octet ussd_service_op (DESIGN.md "Known traps").
            optional_params=[
                OptionalParam(USSD_SERVICE_OP, chr(PSSR_INDICATION)),
                OptionalParam(ITS_SESSION_INFO, "\x12\x34"),
            ],
        )
        resp = await handset.submit(dial)
        answer = await handset.delivered(lambda m: m.service_type == "USSD")
    return resp, answer


async def text_unknown_number(address: tuple[str, int]) -> tuple[SubmitSmResp, DeliverSm]:
    async with bound(address, SENDER) as (handset,):
        message = SubmitSm(
            short_message="HELP",
            source=PhoneNumber(STRANGER_A),
            destination=PhoneNumber(UNKNOWN_SHORT_NUMBER),
            registered_delivery=0,
            log_id="mo",
        )
        resp = await handset.submit(message)
        reply = await handset.delivered(lambda m: m.source.number == UNKNOWN_SHORT_NUMBER)
    return resp, reply


async def person_to_person(
    address: tuple[str, int], message: SubmitSm
) -> tuple[SubmitSmResp, DeliverSm, list[bytes], list[DeliverSm]]:
    async with bound(address, SENDER, RECEIVER) as (sender, receiver):
        resp = await sender.submit(message)
        got = await receiver.delivered(lambda m: not m.is_receipt())
        receipts = []
        if message.registered_delivery:
            receipts.append(await sender.delivered(lambda m: m.is_receipt()))
        parts = receiver.raw_received(0x00000005)
    return resp, got, parts, receipts


# -- tests ---------------------------------------------------------------------------------------


@reactor_test
async def test_gw_05_gw_10_aiosmpplib_dials_ussd_and_reads_the_tlvs_of_the_answer(
    gateway: Gateway,
) -> None:
    """GW-05, GW-10: aiosmpplib's one-char ussd_service_op 1 is read; op 17 comes back."""
    resp, answer = await off_reactor(in_asyncio, dial_unknown_code, gateway.smpp_address)
    assert resp.command_status == SmppCommandStatus.ESME_ROK and resp.message_id
    assert answer.destination.number == STRANGER_A
    assert answer.source.number == code_destination(UNKNOWN_USSD)
    assert answer.short_message == UNKNOWN_SERVICE_TEXT and answer.encoding == "ucs2"
    tlvs = params(answer)
    assert tlvs[USSD_SERVICE_OP] == chr(PSSR_RESPONSE)
    assert tlvs[ITS_SESSION_INFO] == "\x12\x34"  # echoed (GW-10)


@reactor_test
async def test_gw_05_aiosmpplib_sms_to_an_unknown_short_number_is_answered_by_sms(
    gateway: Gateway,
) -> None:
    """GW-05: an MO SMS to a short number no service serves gets an "unknown" SMS back."""
    resp, reply = await off_reactor(in_asyncio, text_unknown_number, gateway.smpp_address)
    assert resp.command_status == SmppCommandStatus.ESME_ROK and resp.message_id
    assert reply.destination.number == STRANGER_A
    assert reply.short_message == UNKNOWN_SERVICE_TEXT and reply.encoding == "ucs2"
    assert reply.service_type != "USSD" and USSD_SERVICE_OP not in params(reply)


@reactor_test
async def test_gw_06_gw_07_gw_08_aiosmpplib_p2p_with_a_receipt_it_correlates(
    gateway: Gateway,
) -> None:
    """GW-06, GW-07, GW-08: B's bind gets A's SMS; aiosmpplib ties the receipt to it."""
    message = SubmitSm(
        short_message="Привет, B",
        source=PhoneNumber(STRANGER_A),
        destination=PhoneNumber(STRANGER_B),
        registered_delivery=1,
        log_id="p2p",
    )
    resp, got, _, receipts = await off_reactor(
        in_asyncio, person_to_person, gateway.smpp_address, message
    )
    assert resp.command_status == SmppCommandStatus.ESME_ROK
    assert (got.source.number, got.destination.number) == (STRANGER_A, STRANGER_B)
    assert got.short_message == "Привет, B" and got.encoding == "ucs2"  # GW-09
    (receipt,) = receipts
    # aiosmpplib found its own submit_sm from the receipt's id: the ids agree.
    assert receipt.log_id == "p2p"
    fields = receipt.parse_receipt()
    assert fields["id"] == resp.message_id
    assert fields["stat"] == "DELIVRD" and fields["dlvrd"] == 1
    tlvs = params(receipt)
    assert tlvs[RECEIPTED_MESSAGE_ID] == resp.message_id
    assert tlvs[MESSAGE_STATE] == 2  # DELIVERED


@reactor_test
@pytest.mark.parametrize(("mode", "parts"), [("udh", 5), ("message_payload", 1)])
async def test_gw_09_aiosmpplib_long_cyrillic_sms_arrives_whole(
    gateway: Gateway, mode: str, parts: int
) -> None:
    """GW-09: 300 Cyrillic characters as UCS2 UDH parts or message_payload reach B whole."""
    message = SubmitSm(
        short_message=LONG_CYRILLIC,
        source=PhoneNumber(STRANGER_A),
        destination=PhoneNumber(STRANGER_B),
        registered_delivery=0,
        log_id=mode,
        # aiosmpplib splits with a UDH only when told not to use message_payload.
        esm_class=UDHI if mode == "udh" else 0,
        auto_message_payload=mode != "udh",
    )
    resp, got, delivered, _ = await off_reactor(
        in_asyncio, person_to_person, gateway.smpp_address, message
    )
    assert resp.command_status == SmppCommandStatus.ESME_ROK
    assert len(delivered) == parts
    assert got.encoding == "ucs2"
    # aiosmpplib joins UDH parts itself; a message_payload arrives in one piece.
    assert (got.short_message or got.message_payload) == LONG_CYRILLIC
