"""A small handset-side SMPP client on python-smpplib, for tests, the CLI and the pytest plugin.

It binds (transceiver by default), sends SMS and USSD as the subscribers it plays, and
collects every deliver_sm the gateway sends, answering each.  It is blocking (smpplib is)
and not thread-safe; run it in a thread from Twisted code.  For a caller that waits on
other input too (the ``ussdsim dial`` handset waits on the keyboard), :meth:`SmppClient.fileno`
can go into ``select`` and :meth:`SmppClient.read_one` handles what came;
:meth:`SmppClient.next_message` polls without raising; :class:`SmsJoiner` puts the parts of
a concatenated SMS back together (GW-09) and :func:`status_name` names an SMPP status.

Two habits of smpplib 2.2.4 are mended here (DESIGN.md, "Known traps"): its DeliverSM
does not know the ``ussd_service_op`` TLV and raises ``KeyError`` on it, so the TLV is
registered at import; and it never checks the sequence number of a response, so
:meth:`SmppClient._request` does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from gateway import coding

if "ussd_service_op" not in smpplib.command.DeliverSM.params:
    smpplib.command.DeliverSM.params["ussd_service_op"] = smpplib.command.Param(type=int, size=1)
    smpplib.command.DeliverSM.params_order = (
        *smpplib.command.DeliverSM.params_order,
        "ussd_service_op",
    )

#: SMPP 3.4 §5.3.2.44 values the client uses (GW-10).
PSSR_INDICATION = 1
USSR_REQUEST = 2
PSSR_RESPONSE = 17
USSR_CONFIRM = 18
RELEASE = 32


class ClientError(Exception):
    """The gateway refused something or did not answer; ``status`` is the SMPP status (or -1)."""

    def __init__(self, message: str, status: int = -1) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen(kw_only=True)
class Received:
    """One deliver_sm as the handset saw it."""

    source: str
    destination: str
    text: str
    data_coding: int
    esm_class: int
    short_message: bytes
    service_type: str = ""
    ussd_service_op: int | None = None
    its_session_info: int | None = None
    receipted_message_id: str | None = None
    message_state: int | None = None
    sequence: int = 0
    #: where this part sits in a concatenated SMS (UDH or sar_* TLVs), None for a whole one
    concat: coding.Concat | None = None

    @property
    def is_receipt(self) -> bool:
        return bool(self.esm_class & 0x04)

    @property
    def ends_dialogue(self) -> bool:
        """A USSD reply that closes the dialogue (PSSR response, GW-10)."""
        return self.ussd_service_op != USSR_REQUEST


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


def _decode(pdu: Any) -> Received:
    body = pdu.short_message or b""
    if not body and getattr(pdu, "message_payload", None):
        body = pdu.message_payload
    if isinstance(body, str):
        body = body.encode("latin-1")
    payload = body
    concat: coding.Concat | None = None
    if (pdu.esm_class or 0) & 0x40:
        try:
            concat, payload = coding.parse_udh(body)
        except coding.CodingError:
            concat, payload = None, body  # a broken UDH: shown as it came
    elif getattr(pdu, "sar_total_segments", None) and getattr(pdu, "sar_segment_seqnum", None):
        concat = coding.Concat(
            int(getattr(pdu, "sar_msg_ref_num", 0) or 0),
            int(pdu.sar_total_segments),
            int(pdu.sar_segment_seqnum),
        )
    try:
        text = coding.decode_text(payload, pdu.data_coding or 0)
    except coding.CodingError:
        text = payload.decode("latin-1")
    return Received(
        source=_text(pdu.source_addr),
        destination=_text(pdu.destination_addr),
        text=text,
        data_coding=pdu.data_coding or 0,
        esm_class=pdu.esm_class or 0,
        short_message=body,
        service_type=_text(pdu.service_type),
        ussd_service_op=getattr(pdu, "ussd_service_op", None),
        its_session_info=getattr(pdu, "its_session_info", None),
        receipted_message_id=_text(getattr(pdu, "receipted_message_id", None)) or None,
        message_state=getattr(pdu, "message_state", None),
        sequence=pdu.sequence,
        concat=concat,
    )


def status_name(status: int) -> str:
    """The SMPP 3.4 §5.1.3 name of a command_status (``ESME_RINVPASWD``), or its hex value."""
    from gateway.pdu import CommandStatus  # here: the codec is slow to import, rarely needed

    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}" if status >= 0 else "no status"


@attrs.frozen(kw_only=True)
class Sms:
    """One whole SMS as a handset shows it: its concatenated parts rejoined (GW-09)."""

    source: str
    destination: str
    text: str
    data_coding: int
    parts: int = 1


class SmsJoiner:
    """Rejoins the parts of concatenated SMS as they arrive (``coding.Reassembler`` underneath).

    Time is passed in (``now``, seconds): a message whose parts have not all come within
    ``timeout`` of its first is given up and reported by :meth:`incomplete`.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self._reassembler = coding.Reassembler(timeout=timeout)

    def add(self, item: Received, now: float) -> Sms | None:
        """Take one deliver_sm; the whole SMS once its last part is in (at once if whole)."""
        if item.concat is None:
            return Sms(
                source=item.source,
                destination=item.destination,
                text=item.text,
                data_coding=item.data_coding,
            )
        key = (item.source, item.destination)
        payload = item.short_message
        if item.esm_class & 0x40:
            payload = coding.parse_udh(item.short_message)[1]
        try:
            whole = self._reassembler.add(key, item.concat, payload, item.data_coding, now)
        except coding.CodingError:
            return Sms(
                source=item.source,
                destination=item.destination,
                text=item.text,
                data_coding=item.data_coding,
            )
        if whole is None:
            return None
        try:
            text = coding.decode_text(whole, item.data_coding)
        except coding.CodingError:
            text = whole.decode("latin-1")
        return Sms(
            source=item.source,
            destination=item.destination,
            text=text,
            data_coding=item.data_coding,
            parts=item.concat.total,
        )

    def incomplete(self, now: float) -> list[coding.Expired]:
        """The partial messages given up by ``now`` (all of them with ``now=math.inf``);
        each one's ``key`` is its (source, destination)."""
        return self._reassembler.expire(now)


class SmppClient:
    """An ESME that plays handsets.  Use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        system_id: str = "tester",
        password: str = "secret",
        bind: str = "transceiver",
        address_range: str = "",
        timeout: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.system_id, self.password = system_id, password
        self.bind_type = bind
        self.address_range = address_range
        self.timeout = timeout
        self.inbox: deque[Received] = deque()
        self._client = smpplib.client.Client(
            host, port, timeout=timeout, allow_unknown_opt_params=True
        )

    def __enter__(self) -> SmppClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> None:
        try:
            self._client.connect()
        except smpplib.exceptions.ConnectionError as exc:
            self._client.disconnect()  # the socket was made: close it, or it leaks
            raise ClientError(f"cannot connect to {self.host}:{self.port}") from exc
        binder = getattr(self._client, f"bind_{self.bind_type}")
        try:
            binder(
                system_id=self.system_id,
                password=self.password,
                address_range=self.address_range,
            )
        except smpplib.exceptions.PDUError as exc:
            status = exc.args[1] if len(exc.args) > 1 else -1
            self._client.disconnect()
            raise ClientError(f"bind refused: {exc.args[0]}", status) from exc
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self._client.disconnect()
            raise ClientError("no answer to bind") from exc

    def close(self) -> None:
        """Unbind politely (if still bound) and close the socket."""
        try:
            if self._client.state in (
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX,
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_RX,
                smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX,
            ):
                self._request(smpplib.smpp.make_pdu("unbind", client=self._client))
        except (ClientError, smpplib.exceptions.ConnectionError, OSError):
            pass
        finally:
            self._client.disconnect()

    # -- requests ----------------------------------------------------------------------------

    def _request(self, pdu: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for the response with the SAME sequence number."""
        pdu.sequence = self._client.next_sequence()  # make_pdu ignores sequence=
        self._client.send_pdu(pdu)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            incoming = self._read(deadline)
            if incoming is None:
                raise ClientError(f"no answer to {pdu.command} (sequence {pdu.sequence})")
            if incoming.command.endswith("_resp") or incoming.command == "generic_nack":
                if incoming.sequence != pdu.sequence:
                    raise ClientError(
                        f"{incoming.command} with sequence {incoming.sequence},"
                        f" expected {pdu.sequence}"
                    )
                return incoming

    def _read(self, deadline: float) -> Any | None:
        """Read one PDU (answering deliver_sm and enquire_link); None at the deadline.

        A deliver_sm is answered and put in :attr:`inbox` before it is returned.
        """
        sock = self._client._socket
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                pdu = self._client.read_pdu()
            except TimeoutError:  # socket.timeout is the same class since 3.10
                return None
            except smpplib.exceptions.ConnectionError as exc:
                raise ClientError("connection closed by the gateway") from exc
            finally:
                sock.settimeout(self.timeout)
            if pdu.command == "deliver_sm":
                self.inbox.append(_decode(pdu))
                resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=self._client)
                resp.sequence = pdu.sequence
                self._client.send_pdu(resp)
            elif pdu.command == "enquire_link":
                resp = smpplib.smpp.make_pdu("enquire_link_resp", client=self._client)
                resp.sequence = pdu.sequence
                self._client.send_pdu(resp)
            if pdu.command == "unbind":
                resp = smpplib.smpp.make_pdu("unbind_resp", client=self._client)
                resp.sequence = pdu.sequence
                self._client.send_pdu(resp)
                raise ClientError("the gateway unbound this session")
            return pdu

    def submit(
        self,
        source: str,
        destination: str,
        text: str | bytes,
        *,
        data_coding: int | None = None,
        registered_delivery: int = 0,
        service_type: str = "",
        esm_class: int = 0,
        **tlvs: Any,
    ) -> str:
        """Send one submit_sm and return the message_id; raise ClientError on a refusal."""
        if isinstance(text, str):
            coded = coding.choose_coding(text) if data_coding is None else data_coding
            body = coding.encode_text(text, coded)
        else:
            coded, body = (data_coding or 0), text
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=self._client,
            service_type=service_type,
            source_addr_ton=1 if source.isdigit() and len(source) > 6 else 0,
            source_addr_npi=1,
            source_addr=source,
            dest_addr_ton=1 if destination.isdigit() and len(destination) > 6 else 0,
            dest_addr_npi=1,
            destination_addr=destination,
            esm_class=esm_class,
            data_coding=coded,
            registered_delivery=registered_delivery,
            short_message=body,
            **tlvs,
        )
        resp = self._request(pdu)
        if resp.status:
            raise ClientError(
                f"submit_sm refused: {smpplib.consts.DESCRIPTIONS.get(resp.status, resp.status)}",
                int(resp.status),
            )
        return _text(resp.message_id)

    def send_sms(self, source: str, destination: str, text: str, **kwargs: Any) -> list[str]:
        """Send a text, split into concatenated parts when it does not fit one SMS (GW-09)."""
        parts = coding.split_text(text, reference=int(time.monotonic() * 1000) & 0xFF)
        return [
            self.submit(
                source,
                destination,
                part.short_message,
                data_coding=part.data_coding,
                esm_class=0x40 if part.esm_class_udhi else 0,
                **kwargs,
            )
            for part in parts
        ]

    def enquire_link(self) -> None:
        resp = self._request(smpplib.smpp.make_pdu("enquire_link", client=self._client))
        if resp.status:
            raise ClientError("enquire_link refused", int(resp.status))

    # -- receiving -----------------------------------------------------------------------------

    def wait_for(
        self, predicate: Callable[[Received], bool] = lambda r: True, timeout: float | None = None
    ) -> Received:
        """The first received message (already or before the timeout) that matches."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            for item in list(self.inbox):
                if predicate(item):
                    self.inbox.remove(item)
                    return item
            incoming = self._read(deadline)
            if incoming is None and time.monotonic() >= deadline:
                raise ClientError("nothing arrived in time")

    def next_message(
        self, predicate: Callable[[Received], bool] = lambda r: True, timeout: float = 0.0
    ) -> Received | None:
        """:meth:`wait_for` that gives None instead of raising when nothing matches in time;
        ``timeout=0`` only looks at what has already arrived."""
        deadline = time.monotonic() + timeout
        while True:
            for item in list(self.inbox):
                if predicate(item):
                    self.inbox.remove(item)
                    return item
            if self._read(deadline) is None:
                return None

    def read_one(self, timeout: float) -> bool:
        """Read and handle one PDU if one comes within ``timeout`` seconds (a deliver_sm is
        answered and lands in :attr:`inbox`); False if none came."""
        return self._read(time.monotonic() + timeout) is not None

    def fileno(self) -> int:
        """The socket's descriptor, for ``select`` beside other input (-1 when closed)."""
        sock = self._client._socket
        return -1 if sock is None else int(sock.fileno())

    def drain(self, seconds: float = 0.2) -> list[Received]:
        """Everything that arrives within ``seconds`` (and what had arrived before)."""
        deadline = time.monotonic() + seconds
        while self._read(deadline) is not None:
            pass
        items = list(self.inbox)
        self.inbox.clear()
        return items

    def drain_sms(self, seconds: float = 0.2) -> list[Sms]:
        """The whole SMS that arrive within ``seconds`` (and before), concatenated parts
        rejoined, in the order their last part came; USSD screens and receipts are left out,
        and a message still missing parts at the end is not returned."""
        joiner = SmsJoiner()
        whole: list[Sms] = []
        for item in self.drain(seconds):
            if item.ussd_service_op is None and not item.is_receipt:
                sms = joiner.add(item, 0.0)
                if sms is not None:
                    whole.append(sms)
        return whole

    # -- USSD (GW-10) ----------------------------------------------------------------------------

    def dial(self, msisdn: str, code: str, *, its_session_info: int | None = None) -> Received:
        """Dial a USSD string as ``msisdn``; return the first screen."""
        extra = {} if its_session_info is None else {"its_session_info": its_session_info}
        self.submit(
            msisdn,
            code_destination(code),
            code,
            service_type="USSD",
            ussd_service_op=PSSR_INDICATION,
            **extra,
        )
        return self.wait_for(lambda r: r.destination == msisdn and r.service_type == "USSD")

    def answer(self, msisdn: str, text: str, *, its_session_info: int | None = None) -> Received:
        """Answer the open dialogue's menu or prompt; return the next screen."""
        extra = {} if its_session_info is None else {"its_session_info": its_session_info}
        self.submit(
            msisdn, "USSD", text, service_type="USSD", ussd_service_op=USSR_CONFIRM, **extra
        )
        return self.wait_for(lambda r: r.destination == msisdn and r.service_type == "USSD")

    def release(self, msisdn: str, *, its_session_info: int | None = None) -> None:
        """Abort the open dialogue (op 32, GW-10)."""
        self.send_ussd(msisdn, "", op=RELEASE, its_session_info=its_session_info)

    def send_ussd(
        self,
        msisdn: str,
        text: str,
        *,
        op: int | None,
        its_session_info: int | None = None,
        destination: str = "USSD",
    ) -> str:
        """One USSD submit_sm as ``msisdn``, with any op (or none: ``op=None``) — for dialects
        and aborts; nothing is awaited (see :meth:`screen`)."""
        extra: dict[str, Any] = {}
        if op is not None:
            extra["ussd_service_op"] = op
        if its_session_info is not None:
            extra["its_session_info"] = its_session_info
        return self.submit(msisdn, destination, text, service_type="USSD", **extra)

    def screen(self, msisdn: str, timeout: float | None = None) -> Received:
        """The next USSD text the gateway sends ``msisdn``."""
        return self.wait_for(
            lambda r: r.destination == msisdn and r.service_type == "USSD", timeout=timeout
        )


def code_destination(code: str) -> str:
    """The destination_addr of a USSD dial: the service code (``*123#`` → ``123``)."""
    body = code.strip("*#")
    return body.split("*")[0].split("#")[0] or "USSD"
