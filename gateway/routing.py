"""Where messages go: mobile-originated dispatch, mobile-terminated routing, the durable
store-and-forward queue and delivery receipts (SPEC GW-05 … GW-09).

The :class:`Router` sits between the SMPP sessions (``gateway.smsc``) and the services.
It imports no Twisted: the adapter registers each connection as a :class:`Link` (a
session plus a way to write and to close) and calls :meth:`Router.flush` after it has fed
a chunk of bytes, which commits the store and only then writes every queued PDU — so no
``submit_sm_resp`` leaves before the message it acknowledges is committed, while a whole
window of submits costs one commit.

A ``submit_sm`` is one of three things:

* USSD (service_type ``USSD`` or a ``ussd_service_op`` TLV, GW-10): handed to the USSD
  handler, whose answers go back to the same session as deliver_sm carrying
  ``ussd_service_op`` and the echoed ``its_session_info``, both as the account's USSD
  dialect writes them (``gateway.dialect``);
* an SMS to a service short number (GW-05): reassembled if concatenated, decoded, and
  handed to the SMS handler of the registry keyed by (profile, short number);
* anything else is person-to-person (GW-06): stored, then routed (GW-08) to the
  receiver or transceiver whose address_range matches the destination, else to the
  session that most recently submitted from it, else held until such a session binds or
  the validity period ends.  The bytes are forwarded as they came (a concatenated SMS
  stays in its parts, with its UDH).

Deliveries honour each session's window (GW-04).  An answer other than
``ESME_ROK`` is final (UNDELIV) except the temporary ones (throttled, queue full,
``ESME_RX_T_APPN`` and no answer at all), which are retried.  A receipt
(GW-07) is queued like any other message when ``registered_delivery`` asked for it,
with the state really reached.

Schedule_delivery_time is refused with ``ESME_RINVSCHED`` (the simulator delivers at
once); a tester that needs deferred delivery moves the clock instead.
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from gateway import coding
from gateway import pdu as P
from gateway.config import EsmeAccount, GatewayConfig
from gateway.dialect import DEFAULT as DEFAULT_DIALECT
from gateway.dialect import DIALECTS, Dialect
from gateway.pdu import CommandStatus, Tag, Tlv, UssdOp
from gateway.smsc import SmscSession
from services.store import (
    DELIVERED,
    EXPIRED,
    REJECTED,
    UNDELIVERABLE,
    NewMessage,
    SqliteStore,
    StoredMessage,
)

DELETED: Final = 4

#: deliver_sm answers after which a delivery is tried again (SMPP 3.4 §5.1.3).
TEMPORARY_FAILURES: Final = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RX_T_APPN,
        -1,  # no answer in time, or the connection went away
    }
)
RETRY_DELAY: Final = 5

#: Receipt ``stat:`` words of SMPP 3.4 Appendix B, by message_state.
RECEIPT_STAT: Final = {
    DELIVERED: "DELIVRD",
    EXPIRED: "EXPIRED",
    DELETED: "DELETED",
    UNDELIVERABLE: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    REJECTED: "REJECTD",
}
ESM_RECEIPT: Final = 0x04
ESM_UDHI: Final = 0x40


@attrs.define(eq=False)
class Link:
    """A connection as the router sees it: the SMPP session and how to reach the peer."""

    conn_id: int
    session: SmscSession
    write: Callable[[bytes], None]
    close: Callable[[], None]
    address_range: re.Pattern[str] | None = None
    queue: deque[StoredMessage] = attrs.Factory(deque)
    #: The session's own clock (the reactor's), which its response timers run on.  The
    #: router's ``now`` is simulated time, which a tester moves: stamping a deliver_sm with
    #: it would time the delivery out at once, or only after the jump (plugin, serve).
    seconds: Callable[[], float] | None = None


@attrs.frozen(kw_only=True)
class MobileOriginated:
    """What a subscriber sent to a service (GW-05) or dialled (GW-10), decoded."""

    source: str
    destination: str
    text: str
    channel: str  # 'sms' | 'ussd'
    ussd_op: int | None = None
    system_id: str = ""
    now: int


@attrs.frozen(kw_only=True)
class Outgoing:
    """A text the network sends a subscriber: a reply, a menu, a notification."""

    to: str
    sender: str
    text: str
    channel: str = "sms"  # 'sms' | 'ussd'
    ussd_op: int | None = None  # SMPP 3.4 §5.3.2.44: 2 USSR request (open), 17 PSSR response (end)
    its_session_info: int | None = None


MoHandler = Callable[[MobileOriginated], list[Outgoing]]
#: How an accepted or refused message is answered: ``(command_status, message_id)``.
Answer = Callable[[int, str], None]
ProfileOf = Callable[[str], "str | None"]


class ServiceRegistry:
    """The dispatch seam of GW-05: handlers by (profile, short number) and (profile, USSD code).

    The service modules register here; an MO for which nothing is registered gets a
    clear reply that the service is unknown.
    """

    def __init__(
        self,
        profile_of: ProfileOf,
        unknown_service: Callable[[MobileOriginated, str | None], list[Outgoing]],
    ) -> None:
        self._profile_of = profile_of
        self._unknown = unknown_service
        self._sms: dict[tuple[str | None, str], MoHandler] = {}
        self._sms_numbers: set[str] = set()
        self._ussd: dict[tuple[str | None, str], MoHandler] = {}
        self.ussd_override: MoHandler | None = None

    def register_sms(self, profile: str | None, short_number: str, handler: MoHandler) -> None:
        self._sms[profile, short_number] = handler
        self._sms_numbers.add(short_number)

    def register_ussd(self, profile: str | None, service_code: str, handler: MoHandler) -> None:
        self._ussd[profile, service_code] = handler

    def is_service_number(self, destination: str) -> bool:
        # Once per submit_sm: a set lookup, not a walk over every registration.
        return destination in self._sms_numbers or len(destination) <= 6

    def dispatch(self, mo: MobileOriginated) -> list[Outgoing]:
        if mo.channel == "ussd" and self.ussd_override is not None:
            # The dialogues find the subscriber themselves (an open one knows its profile).
            return self.ussd_override(mo)
        profile = self._profile_of(mo.source)
        if mo.channel == "ussd":
            code = _service_code(mo.text)
            handler = self._ussd.get((profile, code)) or self._ussd.get((None, code))
        else:
            handler = self._sms.get((profile, mo.destination)) or self._sms.get(
                (None, mo.destination)
            )
        if handler is None:
            return self._unknown(mo, profile)
        return handler(mo)


def _service_code(text: str) -> str:
    """The service code of a USSD string: ``*434*1*7…#`` → ``434``."""
    body = text.strip().lstrip("*#")
    end = len(body)
    for i, char in enumerate(body):
        if char in "*#":
            end = i
            break
    return body[:end]


def parse_smpp_time(value: str, now: int) -> int | None:
    """An SMPP 3.4 §7.1.1 time: absolute ``YYMMDDhhmmsstnnp`` or relative ``…000R``.

    Returns seconds on the simulator clock, ``None`` for the empty string, or raises
    ValueError for anything else.
    """
    if not value:
        return None
    if len(value) != 16 or not value[:15].isdigit() or value[15] not in "+-R":
        raise ValueError(f"not an SMPP time: {value!r}")
    yy, mo, dd, hh, mi, ss = (int(value[i : i + 2]) for i in range(0, 12, 2))
    tenths, quarter_hours = int(value[12]), int(value[13:15])
    if value[15] == "R":
        return now + ((yy * 365 + mo * 30 + dd) * 24 + hh) * 3600 + mi * 60 + ss
    offset = dt.timedelta(minutes=15 * quarter_hours) * (1 if value[15] == "+" else -1)
    moment = dt.datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * 100000, tzinfo=dt.timezone(offset))
    return int(moment.timestamp())


def _smpp_date(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%y%m%d%H%M")


def receipt_sample(message: StoredMessage) -> str:
    """The first 20 characters of the message for a receipt's ``text:`` (printable ASCII).

    Taken from the decoded text, after any UDH, and from message_payload when the message
    came in that TLV; characters a receipt cannot carry become ``.``.
    """
    body = message.short_message
    if not body and message.tlvs:
        for tlv in P.decode_tlvs(message.tlvs):
            if tlv.tag == Tag.MESSAGE_PAYLOAD:
                body = tlv.value
    try:
        if message.esm_class & ESM_UDHI:
            _, body = coding.parse_udh(body)
        text = coding.decode_text(body, message.data_coding)
    except coding.CodingError:
        text = body.decode("latin-1")
    return "".join(c if " " <= c <= "~" else "." for c in text[:20])


def receipt_text(
    message: StoredMessage, message_id: str, state: int, done_at: int, error: int
) -> str:
    """The receipt text of SMPP 3.4 Appendix B (GW-07)."""
    delivered = 1 if state == DELIVERED else 0
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered:03d}"
        f" submit date:{_smpp_date(message.submitted_at)} done date:{_smpp_date(done_at)}"
        f" stat:{RECEIPT_STAT.get(state, 'UNKNOWN')} err:{error:03d} text:{receipt_sample(message)}"
    )


def format_message_id(message_id: int, account: EsmeAccount | None) -> str:
    return (
        str(message_id)
        if account is not None and account.message_id_format == "dec"
        else f"{message_id:x}"
    )


def parse_message_id(text: str, account: EsmeAccount | None) -> int | None:
    try:
        return int(text, 10 if account is not None and account.message_id_format == "dec" else 16)
    except ValueError:
        return None


class Router:
    """Routes everything that enters or leaves the gateway.  See the module docstring."""

    def __init__(
        self,
        store: SqliteStore,
        registry: ServiceRegistry,
        config: GatewayConfig,
        *,
        on_p2p: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self._on_p2p = on_p2p
        self._links: dict[int, Link] = {}
        self._last_submitter: dict[str, Link] = {}
        #: GW-08 decisions by MSISDN; forgotten whenever a bind, a disconnect or a new
        #: last submitter could change one
        self._routes: dict[str, Link | None] = {}
        self._held: dict[int, StoredMessage] = {m.id: m for m in store.enroute()}
        #: (expires_at, message id) of held messages: a heap, so a tick costs what expires
        self._expiries: list[tuple[int, int]] = [(m.expires_at, m.id) for m in self._held.values()]
        heapq.heapify(self._expiries)
        self._retry_at: dict[int, int] = {}
        self._dirty: set[Link] = set()
        self._state_changes: list[tuple[int, int, int, int]] = []
        self._reassembler = coding.Reassembler(timeout=config.reassembly_timeout)
        self._reference = 0

    # -- connections --------------------------------------------------------------------

    def connect(self, link: Link) -> None:
        self._links[link.conn_id] = link

    def bound(self, link: Link, now: int) -> None:
        """A session bound: it may now receive what was held for it (GW-06)."""
        self._routes.clear()
        if link.session.can_receive:
            link.address_range = re.compile(link.session.address_range)
            for message in list(self._held.values()):
                if self._retry_at.get(message.id, 0) <= now and self._route(message) is link:
                    del self._held[message.id]
                    link.queue.append(message)
            self._pump(link, now)
        self._dirty.add(link)

    def disconnect(self, link: Link, now: int) -> None:
        """A connection is gone: whatever it had in flight or queued goes elsewhere."""
        self._links.pop(link.conn_id, None)
        self._dirty.discard(link)
        self._routes.clear()
        for msisdn in [m for m, owner in self._last_submitter.items() if owner is link]:
            del self._last_submitter[msisdn]
        for event in link.session.connection_lost():
            self.delivery_answered(link, event.sequence, event.status, event.context, now)
        pending = list(link.queue)
        link.queue.clear()
        for message in pending:
            self._send_or_hold(message, now)

    # -- operations ---------------------------------------------------------------------

    def operation(self, link: Link, request: P.Pdu, now: int) -> None:
        """Carry out one operation of an ESME; its answer waits for :meth:`flush`."""
        session = link.session
        if isinstance(request, P.SubmitSm):
            self._submit(link, request, now, _answer(session, request))
        elif isinstance(request, P.DataSm):
            self._data_sm(link, request, now)
        elif isinstance(request, P.QuerySm):
            self._query(link, request)
        elif isinstance(request, P.CancelSm):
            self._cancel(link, request, now)
        elif isinstance(request, P.ReplaceSm):
            self._replace(link, request)
        elif isinstance(request, P.SubmitMulti):
            self._submit_multi(link, request, now)
        else:  # pragma: no cover - smsc.TRANSITIONS hands over only the above
            session.respond(request, status=CommandStatus.ESME_RINVCMDID)
        self._dirty.add(link)

    def _submit(self, link: Link, pdu: P.SubmitSm, now: int, answer: Answer) -> None:
        """Accept one message: USSD, an SMS to a service, or person-to-person."""
        account = link.session.account
        if not pdu.source_addr:
            answer(CommandStatus.ESME_RINVSRCADR, "")
            return
        if not pdu.destination_addr:
            answer(CommandStatus.ESME_RINVDSTADR, "")
            return
        if pdu.schedule_delivery_time:
            answer(CommandStatus.ESME_RINVSCHED, "")
            return
        try:
            expires = parse_smpp_time(pdu.validity_period, now)
        except ValueError:
            answer(CommandStatus.ESME_RINVEXPIRY, "")
            return
        source = pdu.source_addr
        if self._last_submitter.get(source) is not link:
            self._last_submitter[source] = link
            self._routes.pop(source, None)
        if pdu.service_type == "USSD" or pdu.ussd_service_op is not None:
            self._mobile_originated(link, pdu, "ussd", now, answer)
            return
        if self.registry.is_service_number(pdu.destination_addr):
            self._mobile_originated(link, pdu, "sms", now, answer)
            return
        if pdu.esm_class & ESM_UDHI:
            # A UDHI flag must come with a well-formed UDH: a receiver would choke on it.
            payload = pdu.message_payload
            try:
                coding.parse_udh(payload if payload is not None else pdu.short_message)
            except coding.CodingError:
                answer(CommandStatus.ESME_RINVESMCLASS, "")
                return
        message = NewMessage(
            kind="p2p",
            origin_system_id=account.system_id if account else "",
            service_type=pdu.service_type,
            source_addr_ton=pdu.source_addr_ton,
            source_addr_npi=pdu.source_addr_npi,
            source_addr=pdu.source_addr,
            dest_addr_ton=pdu.dest_addr_ton,
            dest_addr_npi=pdu.dest_addr_npi,
            destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class & ~0x03,  # the mode bits are ours to set on delivery
            protocol_id=pdu.protocol_id,
            priority_flag=pdu.priority_flag,
            registered_delivery=pdu.registered_delivery,
            data_coding=pdu.data_coding,
            short_message=pdu.short_message,
            tlvs=b"".join([P.encode_tlv(t) for t in pdu.tlvs]) if pdu.tlvs else b"",
            submitted_at=now,
            expires_at=expires if expires is not None else now + self.config.default_validity,
        )
        message_id = self.store.add_message(message)
        answer(0, format_message_id(message_id, account))
        if self._on_p2p is not None:
            self._on_p2p(pdu.source_addr, pdu.destination_addr, now)
        self._send_or_hold(StoredMessage.of(message_id, message), now)

    def _mobile_originated(
        self, link: Link, pdu: P.SubmitSm, channel: str, now: int, answer: Answer
    ) -> None:
        session = link.session
        try:
            text = self._mo_text(link, pdu, now)
        except coding.CodingError as exc:
            answer(exc.status, "")
            return
        # The MO itself is kept in the message log, as accepted (state ACCEPTED).
        (message_id,) = self.store.add_messages(
            [
                NewMessage(
                    kind="mo" if channel == "sms" else "ussd_mo",
                    origin_system_id=session.account.system_id if session.account else "",
                    service_type=pdu.service_type,
                    source_addr=pdu.source_addr,
                    destination_addr=pdu.destination_addr,
                    data_coding=pdu.data_coding,
                    short_message=pdu.short_message,
                    submitted_at=now,
                    expires_at=now,
                    state=6,
                )
            ]
        )
        answer(0, format_message_id(message_id, session.account))
        if text is None:
            return  # one part of a concatenated MO; the rest will follow
        its = pdu.its_session_info
        op = pdu.ussd_service_op
        if channel == "ussd":
            # The account's USSD dialect, normalised to GW-10's ops (gateway/dialect.py).
            op = _dialect_of(link).inbound(op, its)
        mo = MobileOriginated(
            source=pdu.source_addr,
            destination=pdu.destination_addr,
            text=text,
            channel=channel,
            ussd_op=op,
            system_id=session.account.system_id if session.account else "",
            now=now,
        )
        for out in self.registry.dispatch(mo):
            if out.channel == "ussd" and its is not None and out.its_session_info is None:
                out = attrs.evolve(out, its_session_info=its)
            self.send(out, now, prefer=link)

    def _mo_text(self, link: Link, pdu: P.SubmitSm, now: int) -> str | None:
        """The text of an MO, or None while a concatenated one is incomplete (GW-09)."""
        payload = pdu.message_payload
        body = payload if payload is not None else pdu.short_message
        key = (pdu.source_addr, pdu.destination_addr)
        if pdu.esm_class & ESM_UDHI:
            concat, body = coding.parse_udh(body)
            if concat is not None:
                whole = self._reassembler.add(key, concat, body, pdu.data_coding, now)
                if whole is None:
                    return None
                body = whole
        elif pdu.sar_msg_ref_num is not None:
            concat = coding.Concat(
                reference=pdu.sar_msg_ref_num,
                total=pdu.sar_total_segments or 1,
                sequence=pdu.sar_segment_seqnum or 1,
            )
            whole = self._reassembler.add(key, concat, body, pdu.data_coding, now)
            if whole is None:
                return None
            body = whole
        return coding.decode_text(body, pdu.data_coding)

    def _data_sm(self, link: Link, pdu: P.DataSm, now: int) -> None:
        """data_sm is carried as a submit_sm with its payload (SMPP 3.4 §4.7)."""
        as_submit = P.SubmitSm(
            sequence=pdu.sequence,
            service_type=pdu.service_type,
            source_addr_ton=pdu.source_addr_ton,
            source_addr_npi=pdu.source_addr_npi,
            source_addr=pdu.source_addr,
            dest_addr_ton=pdu.dest_addr_ton,
            dest_addr_npi=pdu.dest_addr_npi,
            destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class,
            registered_delivery=pdu.registered_delivery,
            data_coding=pdu.data_coding,
            tlvs=pdu.tlvs,
        )
        session = link.session

        def answer(status: int, message_id: str) -> None:
            session.respond(pdu, status=status, message_id=message_id)

        self._submit(link, as_submit, now, answer)

    def _query(self, link: Link, pdu: P.QuerySm) -> None:
        session = link.session
        message_id = parse_message_id(pdu.message_id, session.account)
        message = self.store.get_message(message_id) if message_id is not None else None
        if message is None or message.source_addr != pdu.source_addr:
            session.respond(pdu, status=CommandStatus.ESME_RQUERYFAIL)
            return
        final = "" if message.done_at is None else _smpp_date(message.done_at) + "00000+"
        session.respond(
            pdu,
            message_id=pdu.message_id,
            final_date=final,
            message_state=message.state,
            error_code=message.error_code,
        )

    def _cancel(self, link: Link, pdu: P.CancelSm, now: int) -> None:
        session = link.session
        message_id = parse_message_id(pdu.message_id, session.account)
        message = self._held.get(message_id) if message_id is not None else None
        if message is None or message.source_addr != pdu.source_addr:
            session.respond(pdu, status=CommandStatus.ESME_RCANCELFAIL)
            return
        del self._held[message.id]
        self._finish(message, DELETED, now, 0)
        session.respond(pdu)

    def _replace(self, link: Link, pdu: P.ReplaceSm) -> None:
        session = link.session
        message_id = parse_message_id(pdu.message_id, session.account)
        message = self._held.get(message_id) if message_id is not None else None
        if message is None or message.source_addr != pdu.source_addr:
            session.respond(pdu, status=CommandStatus.ESME_RREPLACEFAIL)
            return
        self._held[message.id] = message._replace(short_message=pdu.short_message)
        self.store.begin()
        self.store.connection.execute(
            "UPDATE messages SET short_message = ? WHERE id = ?", (pdu.short_message, message.id)
        )
        session.respond(pdu)

    def _submit_multi(self, link: Link, pdu: P.SubmitMulti, now: int) -> None:
        """Each SME address becomes its own person-to-person message (SMPP 3.4 §4.5)."""
        session = link.session
        unsuccessful = []
        first_id = ""
        for dest in pdu.dest_addresses:
            if not isinstance(dest, P.SmeAddress) or not dest.destination_addr:
                unsuccessful.append(
                    P.UnsuccessSme(
                        dest_addr_ton=getattr(dest, "dest_addr_ton", 0),
                        dest_addr_npi=getattr(dest, "dest_addr_npi", 0),
                        destination_addr=getattr(dest, "destination_addr", ""),
                        error_status_code=CommandStatus.ESME_RINVDSTADR,
                    )
                )
                continue
            single = P.SubmitSm(
                sequence=pdu.sequence,
                service_type=pdu.service_type,
                source_addr_ton=pdu.source_addr_ton,
                source_addr_npi=pdu.source_addr_npi,
                source_addr=pdu.source_addr,
                dest_addr_ton=dest.dest_addr_ton,
                dest_addr_npi=dest.dest_addr_npi,
                destination_addr=dest.destination_addr,
                esm_class=pdu.esm_class,
                protocol_id=pdu.protocol_id,
                priority_flag=pdu.priority_flag,
                validity_period=pdu.validity_period,
                registered_delivery=pdu.registered_delivery,
                data_coding=pdu.data_coding,
                short_message=pdu.short_message,
                tlvs=pdu.tlvs,
            )
            outcome: list[tuple[int, str]] = []
            self._submit(link, single, now, _recorder(outcome))
            status, message_id = outcome[0]
            if status:
                unsuccessful.append(
                    P.UnsuccessSme(
                        dest_addr_ton=dest.dest_addr_ton,
                        dest_addr_npi=dest.dest_addr_npi,
                        destination_addr=dest.destination_addr,
                        error_status_code=status,
                    )
                )
            elif not first_id:
                first_id = message_id
        session.respond(pdu, message_id=first_id, unsuccess_smes=tuple(unsuccessful))

    # -- mobile-terminated --------------------------------------------------------------

    def send(self, out: Outgoing, now: int, *, prefer: Link | None = None) -> None:
        """Queue a text for a subscriber: stored (SMS) or straight to the dialogue's session."""
        if out.channel == "ussd":
            self._send_ussd(out, now, prefer)
            return
        target = self._route_msisdn(out.to, None)
        account = target.session.account if target is not None else None
        mode = account.long_messages if account is not None else "udh"
        data_coding = coding.choose_coding(out.text)
        messages: list[NewMessage] = []
        base = dict(
            kind="reply",
            source_addr_ton=5 if not out.sender.isdigit() else (0 if len(out.sender) <= 6 else 1),
            source_addr_npi=0 if len(out.sender) <= 6 else 1,
            source_addr=out.sender,
            destination_addr=out.to,
            submitted_at=now,
            expires_at=now + self.config.default_validity,
        )
        if mode == "payload":
            coded, payload = coding.payload_for(out.text, data_coding)
            tlv = P.encode_tlv(Tlv(Tag.MESSAGE_PAYLOAD, payload))
            messages.append(NewMessage(data_coding=coded, short_message=b"", tlvs=tlv, **base))  # type: ignore[arg-type]
        else:
            self._reference = (self._reference + 1) & 0xFFFF
            parts = coding.split_text(
                out.text,
                data_coding=data_coding,
                reference=self._reference if mode == "udh16" else self._reference & 0xFF,
                reference_16bit=mode == "udh16",
                use_sar=mode == "sar",
            )
            for part in parts:
                tlvs = b""
                if part.sar is not None:
                    ref, total, seq = part.sar
                    tlvs = b"".join(
                        P.encode_tlv(t)
                        for t in (
                            Tlv.u16(Tag.SAR_MSG_REF_NUM, ref),
                            Tlv.u8(Tag.SAR_TOTAL_SEGMENTS, total),
                            Tlv.u8(Tag.SAR_SEGMENT_SEQNUM, seq),
                        )
                    )
                messages.append(
                    NewMessage(
                        esm_class=ESM_UDHI if part.esm_class_udhi else 0,
                        data_coding=part.data_coding,
                        short_message=part.short_message,
                        tlvs=tlvs,
                        **base,  # type: ignore[arg-type]
                    )
                )
        ids = self.store.add_messages(messages)
        for message, message_id in zip(messages, ids, strict=True):
            self._send_or_hold(StoredMessage.of(message_id, message), now)

    def _send_ussd(self, out: Outgoing, now: int, prefer: Link | None) -> None:
        """USSD is a live dialogue: it goes to the session the subscriber dialled from."""
        target = prefer if prefer is not None and prefer.session.can_receive else None
        if target is None:
            target = self._route_msisdn(out.to, None)
        data_coding = coding.choose_coding(out.text)
        tlvs = []
        op, its = out.ussd_op, out.its_session_info
        if target is not None and op is not None:
            # GW-10 says 2 (menu) or 17 (final); the receiving account's dialect says how.
            op, its = _dialect_of(target).outbound(
                end=op != UssdOp.USSR_REQUEST, its_session_info=its
            )
        if op is not None:
            tlvs.append(Tlv.u8(Tag.USSD_SERVICE_OP, op))
        if its is not None:
            tlvs.append(Tlv.u16(Tag.ITS_SESSION_INFO, its))
        message = NewMessage(
            kind="ussd",
            service_type="USSD",
            source_addr_ton=0,
            source_addr_npi=0,
            source_addr=out.sender,
            destination_addr=out.to,
            data_coding=data_coding,
            short_message=coding.encode_text(out.text, data_coding),
            tlvs=b"".join(P.encode_tlv(t) for t in tlvs),
            submitted_at=now,
            expires_at=now + 120,
        )
        message_id = self.store.add_message(message)
        stored = StoredMessage.of(message_id, message)
        if target is None:
            self._finish(stored, UNDELIVERABLE, now, 0)
            return
        target.queue.append(stored)
        self._pump(target, now)

    def _route_msisdn(self, msisdn: str, origin_system_id: str | None) -> Link | None:
        """GW-08: address_range match, else the last session that submitted from it."""
        last = self._last_submitter.get(msisdn)
        matching = [
            link
            for link in self._links.values()
            if link.session.can_receive
            and link.address_range is not None
            and link.address_range.fullmatch(msisdn)
        ]
        if matching:
            if last in matching:
                return last
            if origin_system_id:
                for link in reversed(matching):
                    account = link.session.account
                    if account is not None and account.system_id == origin_system_id:
                        return link
            return matching[-1]
        if last is not None and last.session.can_receive:
            return last
        return None

    def _route(self, message: StoredMessage) -> Link | None:
        if message.kind == "receipt":
            return self._route_msisdn(message.destination_addr, message.origin_system_id)
        destination = message.destination_addr
        try:
            return self._routes[destination]
        except KeyError:
            link = self._routes[destination] = self._route_msisdn(destination, None)
            return link

    def _send_or_hold(self, message: StoredMessage, now: int) -> None:
        link = self._route(message)
        if link is None:
            self._hold(message)
            return
        link.queue.append(message)
        self._pump(link, now)

    def _pump(self, link: Link, now: int) -> None:
        """Send queued messages while the session's window allows (GW-04)."""
        session = link.session
        while link.queue and session.can_deliver():
            message = link.queue.popleft()
            tlvs = P.decode_tlvs(message.tlvs) if message.tlvs else ()
            session.deliver(
                P.DeliverSm(
                    sequence=0,
                    service_type=message.service_type,
                    source_addr_ton=message.source_addr_ton,
                    source_addr_npi=message.source_addr_npi,
                    source_addr=message.source_addr,
                    dest_addr_ton=message.dest_addr_ton,
                    dest_addr_npi=message.dest_addr_npi,
                    destination_addr=message.destination_addr,
                    esm_class=message.esm_class,
                    protocol_id=message.protocol_id,
                    priority_flag=message.priority_flag,
                    data_coding=message.data_coding,
                    short_message=message.short_message,
                    tlvs=tlvs,
                ),
                message,
                link.seconds() if link.seconds is not None else now,
            )
            self._dirty.add(link)

    def delivery_answered(
        self, link: Link, sequence: int, status: int, context: object, now: int
    ) -> None:
        """The ESME answered a deliver_sm: final state, receipt, or another try later."""
        if not isinstance(context, StoredMessage):
            return
        message = context
        if status == 0:
            self._finish(message, DELIVERED, now, 0)
        elif message.kind == "ussd":
            self._finish(message, UNDELIVERABLE, now, status if status > 0 else 0)
        elif status in TEMPORARY_FAILURES:
            self._retry_at[message.id] = now + RETRY_DELAY
            self._hold(message)
        else:
            self._finish(message, UNDELIVERABLE, now, status)
        self._pump(link, now)

    def _finish(self, message: StoredMessage, state: int, now: int, error: int) -> None:
        self._retry_at.pop(message.id, None)
        self._state_changes.append((message.id, state, now, error & 0xFFFF))
        if message.registered_delivery & 0x03 and message.kind == "p2p":
            wanted = message.registered_delivery & 0x03
            if wanted == 1 or (wanted == 2 and state != DELIVERED):
                self._queue_receipt(message, state, now, error)

    def _queue_receipt(self, message: StoredMessage, state: int, now: int, error: int) -> None:
        account = self.config.account(message.origin_system_id)
        message_id = format_message_id(message.id, account)
        text = receipt_text(message, message_id, state, now, error)
        tlvs = (
            Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, message_id),
            Tlv.u8(Tag.MESSAGE_STATE, state),
        )
        receipt = NewMessage(
            kind="receipt",
            origin_system_id=message.origin_system_id,
            source_addr_ton=message.dest_addr_ton,
            source_addr_npi=message.dest_addr_npi,
            source_addr=message.destination_addr,
            dest_addr_ton=message.source_addr_ton,
            dest_addr_npi=message.source_addr_npi,
            destination_addr=message.source_addr,
            esm_class=ESM_RECEIPT,
            short_message=text.encode("ascii"),
            tlvs=b"".join(P.encode_tlv(t) for t in tlvs),
            submitted_at=now,
            expires_at=now + self.config.default_validity,
            receipt_for=message.id,
        )
        receipt_id = self.store.add_message(receipt)
        self._send_or_hold(StoredMessage.of(receipt_id, receipt), now)

    # -- time ---------------------------------------------------------------------------

    def _hold(self, message: StoredMessage) -> None:
        """Keep a message until a session for it binds or its validity ends (GW-06)."""
        self._held[message.id] = message
        heapq.heappush(self._expiries, (message.expires_at, message.id))

    def tick(self, now: int) -> None:
        """Expire held messages (GW-06), retry deliveries, drop stale MO parts."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, message_id = heapq.heappop(expiries)
            message = self._held.pop(message_id, None)
            if message is not None and message.expires_at <= now:
                self._retry_at.pop(message_id, None)
                self._finish(message, EXPIRED, now, 0)
        for message_id, moment in list(self._retry_at.items()):
            if moment <= now:
                del self._retry_at[message_id]
                message = self._held.pop(message_id, None)
                if message is not None:
                    self._send_or_hold(message, now)
        self._reassembler.expire(now)

    def next_deadline(self) -> int | None:
        moments = list(self._retry_at.values())
        if self._expiries:
            moments.append(self._expiries[0][0])
        return min(moments) if moments else None

    # -- commit, then write ------------------------------------------------------------

    def flush(self) -> None:
        """Commit what the last operations changed, then write every queued PDU."""
        if self._state_changes:
            self.store.set_states(self._state_changes)
            self._state_changes = []
        self.store.commit()
        dirty, self._dirty = self._dirty, set()
        for link in dirty:
            data = link.session.data_to_send()
            if data:
                link.write(data)

    def mark_dirty(self, link: Link) -> None:
        """The session has something to write (a bind response, an error answer)."""
        self._dirty.add(link)

    def held_count(self) -> int:
        return len(self._held)

    def links(self) -> Iterable[Link]:
        return self._links.values()


def _dialect_of(link: Link) -> Dialect:
    """The USSD dialect of the link's ESME account (config.py refuses unknown names)."""
    account = link.session.account
    return DEFAULT_DIALECT if account is None else DIALECTS.get(account.dialect, DEFAULT_DIALECT)


def _answer(session: SmscSession, request: P.Pdu) -> Answer:
    def answer(status: int, message_id: str) -> None:
        if status:
            session.respond(request, status=status)
        else:
            session.respond(request, message_id=message_id)

    return answer


def _recorder(outcome: list[tuple[int, str]]) -> Answer:
    """An answer that records ``(status, message_id)`` (one destination of a submit_multi)."""

    def answer(status: int, message_id: str) -> None:
        outcome.append((status, message_id))

    return answer
