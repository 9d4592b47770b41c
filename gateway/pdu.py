"""SMPP 3.4 wire codec: every PDU an SMSC sends or receives, as frozen attrs values.

This module owns the bytes ⇄ values boundary of the gateway (DESIGN.md "Own sans-IO codec";
SPEC GW-03, GW-10): the SMPP 3.4 registries (command ids, command statuses, TLV tags, TON,
NPI, USSD operations, message states, esm_class and registered_delivery bits), one frozen
attrs class per PDU, :func:`encode` / :func:`decode` for exactly one PDU, and
:class:`PduStream`, the framing that cuts a TCP byte stream into PDUs. It does no I/O and
imports nothing from Twisted. Malformed input never escapes as anything but a
:class:`PduError` subclass that carries the ``ESME_R*`` status to answer with.

Theory of operation
-------------------
*Fields are the wire layout.* Each PDU class declares its mandatory fields in wire order;
every field carries a small "kind" object (C-Octet String of a maximum size, time string,
8-bit integer with its allowed values, short_message, TLV list, submit_multi lists) that
knows how to check, read and write it and which :class:`PduError` a bad value raises.
The generic encoder and decoder walk those kinds, so a class definition is the whole
description of its PDU. submit_sm, deliver_sm, their resps and the header-only PDUs also
have hand-unrolled fast paths; the fast decoder of submit_sm/deliver_sm validates every
fixed field with one regular expression generated from the same kinds and falls back to
the generic decoder, which names the exact fault, whenever anything is irregular. Tests
check that both paths agree.

*Strings.* C-Octet Strings are decoded as Latin-1, so any octet other than NUL round-trips
(SMPP 3.4 §3.1 says ASCII; real ESMEs send other octets, and the session decides whether
to accept them). A field's maximum size counts the NUL, as §4 does: ``system_id`` of
"max 16" holds at most 15 characters. ``schedule_delivery_time``, ``validity_period`` and
``final_date`` are empty or exactly 16 characters ``YYMMDDhhmmsstnnp`` with ``p`` one of
``+ - R`` (§7.1).

*Construction.* attrs' generated ``__init__`` of a frozen class with validators costs about
20 µs for a 20-field PDU on the target machine, more than the whole codec budget. Each
class therefore gets a generated ``__new__`` (same keyword signature, same defaults) that
checks the common case inline and asks the field's kind for the exact error otherwise,
and builds the instance through a layout-identical mutable "builder" twin whose
``__class__`` is then set to the frozen class. The decoder uses the same builder without
checks, since it has already validated every octet. ``attrs.fields``, ``attrs.evolve``,
equality, hashing, ``repr`` and immutability are attrs' own. PDU classes are final.
``with_sequence`` re-numbers a PDU without re-checking it.

*TLV sections.* A USSD dialogue repeats the same ussd_service_op/its_session_info pair,
and many ESMEs always send the same one or two TLVs, so TLV sections of up to 64 octets
are cached in both directions (bounded, cleared when full): a repeated section costs a
dictionary lookup instead of a parse. ``bench/codec.py`` shows both cases.

*Resps in error.* §4.1.2, §4.4.2 and §4.6.2 omit the body of a resp whose command_status
is not 0. :func:`decode` accepts such an empty body on every resp that has one (its
fields take their defaults) and :func:`encode` omits the body when the status is not 0
and every field has its default, so both directions round-trip.

Errors
------
Every failure is a :class:`PduError` subclass; ``status`` is the command_status to answer
with (GW-03: the operation's resp when the command_id is known, else generic_nack) and
``fatal`` says the connection cannot continue.

=============================== ======================= =====================================
error                           status                  raised when
=============================== ======================= =====================================
InvalidCommandLength            ESME_RINVCMDLEN         :func:`decode` given under 16 octets
                                                        or a command_length other than its
                                                        length; the body ends before a fixed
                                                        field; octets left over after the
                                                        last field of a PDU without TLVs; an
                                                        empty body on a resp with status 0
FramingError (fatal)            ESME_RINVCMDLEN         :class:`PduStream`: command_length
                                                        under 16 or over the maximum; the
                                                        stream cannot be resynchronised
InvalidCommandId                ESME_RINVCMDID          command_id not in SMPP 3.4 (§5.1.2.1)
InvalidMessageLength            ESME_RINVMSGLEN         sm_length 255 or past the body's end;
                                                        short_message together with a
                                                        message_payload TLV (§5.3.2.32: then
                                                        sm_length must be 0, so sm_length is
                                                        the field in error)
InvalidSystemId                 ESME_RINVSYSID          system_id over 16 octets/unterminated
InvalidPassword                 ESME_RINVPASWD          password over 9 octets
InvalidSystemType               ESME_RINVSYSTYP         system_type over 13 octets
InvalidAddressRange             ESME_RBINDFAIL          address_range over 41 octets (§5.1.3
                                                        has no status of its own for it)
InvalidServiceType              ESME_RINVSERTYP         service_type over 6 octets
InvalidSourceAddress            ESME_RINVSRCADR         source_addr over 21 octets (65 in
                                                        data_sm and alert_notification)
InvalidSourceTon                ESME_RINVSRCTON         source_addr_ton not in :class:`Ton`
InvalidSourceNpi                ESME_RINVSRCNPI         source_addr_npi not in :class:`Npi`
InvalidDestinationAddress       ESME_RINVDSTADR         destination_addr over 21 octets (65 in
                                                        data_sm), esme_addr over 65
InvalidDestinationTon           ESME_RINVDSTTON         dest_addr_ton / esme_addr_ton
InvalidDestinationNpi           ESME_RINVDSTNPI         dest_addr_npi / esme_addr_npi
InvalidMessageId                ESME_RINVMSGID          message_id over 65 octets
InvalidScheduleDeliveryTime     ESME_RINVSCHED          not empty and not 16 chars per §7.1
InvalidValidityPeriod           ESME_RINVEXPIRY         the same for validity_period
InvalidFinalDate                ESME_RQUERYFAIL         the same for query_sm_resp final_date
InvalidEsmClass                 ESME_RINVESMCLASS       a message-type value reserved in
                                                        §5.2.12 (bits 5-2 not 0,1,2,4,6,8)
InvalidPriorityFlag             ESME_RINVPRTFLG         priority_flag over 3 (§5.2.14)
InvalidRegisteredDelivery       ESME_RINVREGDLVFLG      reserved bits (§5.2.17: bits 7-5, or
                                                        3 in bits 1-0)
InvalidReplaceIfPresentFlag     ESME_RINVREPFLAG        replace_if_present_flag over 1
InvalidDefaultMessageId         ESME_RINVDFTMSGID       sm_default_msg_id 255 (§5.2.23)
InvalidNumberOfDestinations     ESME_RINVNUMDESTS       submit_multi number_of_dests 0 or 255
InvalidDestFlag                 ESME_RINVDESTFLAG       submit_multi dest_flag not 1 or 2
InvalidDistributionListName     ESME_RINVDLNAME         dl_name over 21 octets
InvalidTlvStream                ESME_RINVOPTPARSTREAM   a partial TLV header, or a TLV length
                                                        running past the end of the body
InvalidTlvLength                ESME_RINVPARLEN         a known tag whose length is not its
                                                        §5.3.2 size (e.g. ussd_service_op not
                                                        1 octet, its_session_info not 2)
InvalidTlvValue                 ESME_RINVOPTPARAMVAL    a C-Octet String TLV not ending in
                                                        its only NUL; sar_total_segments or
                                                        sar_segment_seqnum of 0
InvalidFieldValue               ESME_RSYSERR            building a PDU only: a value of the
                                                        wrong type or range for a field with
                                                        no status of its own (sequence,
                                                        status, protocol_id, ...)
=============================== ======================= =====================================

A missing field (the body ends exactly before it) is a length error (RINVCMDLEN); a field
that is present but unterminated or too long is that field's error. Values the codec
leaves to the session and accepts as they come: interface_version, data_coding,
protocol_id, the bind's addr_ton/addr_npi, the header's command_status on requests, TLVs
in PDUs where §4 does not list them, repeated TLVs, unknown (vendor) TLVs — these are kept
in order and re-encoded byte for byte.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Final, Generic, NamedTuple, TypeAlias, TypeVar, cast

import attrs

__all__ = [
    "PDU_CLASSES",
    "AlertNotification",
    "BasePdu",
    "BaseRequest",
    "BaseResponse",
    "BindReceiver",
    "BindReceiverResp",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "CancelSm",
    "CancelSmResp",
    "CommandId",
    "CommandStatus",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "DestFlag",
    "DistributionList",
    "EnquireLink",
    "EnquireLinkResp",
    "EsmClass",
    "FramingError",
    "GenericNack",
    "InvalidAddressRange",
    "InvalidCommandId",
    "InvalidCommandLength",
    "InvalidDefaultMessageId",
    "InvalidDestFlag",
    "InvalidDestinationAddress",
    "InvalidDestinationNpi",
    "InvalidDestinationTon",
    "InvalidDistributionListName",
    "InvalidEsmClass",
    "InvalidFieldValue",
    "InvalidFinalDate",
    "InvalidMessageId",
    "InvalidMessageLength",
    "InvalidNumberOfDestinations",
    "InvalidPassword",
    "InvalidPriorityFlag",
    "InvalidRegisteredDelivery",
    "InvalidReplaceIfPresentFlag",
    "InvalidScheduleDeliveryTime",
    "InvalidServiceType",
    "InvalidSourceAddress",
    "InvalidSourceNpi",
    "InvalidSourceTon",
    "InvalidSystemId",
    "InvalidSystemType",
    "InvalidTlvLength",
    "InvalidTlvStream",
    "InvalidTlvValue",
    "InvalidValidityPeriod",
    "MessageState",
    "Npi",
    "Outbind",
    "Pdu",
    "PduError",
    "PduStream",
    "QuerySm",
    "QuerySmResp",
    "RegisteredDelivery",
    "ReplaceSm",
    "ReplaceSmResp",
    "SmeAddress",
    "SubmitMulti",
    "SubmitMultiResp",
    "SubmitSm",
    "SubmitSmResp",
    "Tag",
    "Tlv",
    "Ton",
    "Unbind",
    "UnbindResp",
    "UnsuccessSme",
    "UssdOp",
    "decode",
    "decode_tlvs",
    "encode",
    "encode_tlv",
]


# -- registries --------------------------------------------------------------------------


class CommandId(IntEnum):
    """command_id values of SMPP 3.4 §5.1.2.1; a resp is its request's id | 0x80000000."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(IntEnum):
    """command_status values (error codes) of SMPP 3.4 §5.1.3.

    0x400-0x4FF are reserved for SMSC vendors; the field is a plain ``int`` on every PDU so
    such values pass through.
    """

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


class Tag(IntEnum):
    """Optional parameter (TLV) tags of SMPP 3.4 §5.3.2 ("Optional Parameter Tag Values").

    0x1400-0x3FFF are reserved for vendors; those and any other tag not named here are kept
    as unknown TLVs.
    """

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class Ton(IntEnum):
    """Type of Number, SMPP 3.4 §5.2.5."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering Plan Indicator, SMPP 3.4 §5.2.6."""

    UNKNOWN = 0
    ISDN = 1  # E.163/E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    LAND_MOBILE = 6  # E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14  # IP
    WAP_CLIENT_ID = 18


class UssdOp(IntEnum):
    """ussd_service_op values, SMPP 3.4 §5.3.2.44, and the simulator's abort.

    SPEC GW-10: the ESME opens a dialogue with PSSR_INDICATION and answers menus with
    USSR_CONFIRM; the simulator sends USSR_REQUEST (dialogue stays open) or PSSR_RESPONSE
    (final text). RELEASE (32) lies in the range §5.3.2.44 reserves for vendors; the
    simulator reads it as the subscriber's abort, as several USSD gateways do.
    """

    PSSD_INDICATION = 0
    PSSR_INDICATION = 1
    USSR_REQUEST = 2
    USSN_REQUEST = 3
    PSSD_RESPONSE = 16
    PSSR_RESPONSE = 17
    USSR_CONFIRM = 18
    USSN_CONFIRM = 19
    RELEASE = 32


class MessageState(IntEnum):
    """message_state of query_sm_resp and the message_state TLV, SMPP 3.4 §5.2.28."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class EsmClass(IntFlag):
    """esm_class bits, SMPP 3.4 §5.2.12.

    Bits 1-0 are the messaging mode, bits 5-2 the message type (an enumeration, not
    independent flags: only 0, 1, 2, 4, 6 and 8 are defined), bits 7-6 GSM features.
    """

    DEFAULT_MODE = 0x00
    DATAGRAM = 0x01
    FORWARD = 0x02
    STORE_FORWARD = 0x03
    SMSC_DELIVERY_RECEIPT = 0x04
    SME_DELIVERY_ACK = 0x08
    SME_MANUAL_ACK = 0x10
    CONVERSATION_ABORT = 0x18
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40
    REPLY_PATH = 0x80
    MODE_MASK = 0x03
    TYPE_MASK = 0x3C


class RegisteredDelivery(IntFlag):
    """registered_delivery bits, SMPP 3.4 §5.2.17."""

    NONE = 0x00
    SMSC_RECEIPT = 0x01  # on success or failure
    SMSC_RECEIPT_ON_FAILURE = 0x02
    SME_DELIVERY_ACK = 0x04
    SME_MANUAL_ACK = 0x08
    INTERMEDIATE_NOTIFICATION = 0x10
    SMSC_RECEIPT_MASK = 0x03


class DestFlag(IntEnum):
    """dest_flag of a submit_multi destination, SMPP 3.4 §4.5.1.1."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2


# -- errors ------------------------------------------------------------------------------


class PduError(Exception):
    """Root of every codec error; see the table in the module docstring.

    ``status`` is the command_status to answer with, ``fatal`` whether the connection must
    close. ``command_id`` and ``sequence`` are those of the offending PDU when the header
    could be read (so the session can answer with the right resp or generic_nack).
    """

    status: ClassVar[CommandStatus] = CommandStatus.ESME_RSYSERR
    fatal: ClassVar[bool] = False

    def __init__(
        self, detail: str, *, command_id: int | None = None, sequence: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.command_id = command_id
        self.sequence = sequence

    def __str__(self) -> str:
        where = []
        if self.command_id is not None:
            try:
                where.append(CommandId(self.command_id).name.lower())
            except ValueError:
                where.append(f"command_id=0x{self.command_id:08x}")
        if self.sequence is not None:
            where.append(f"sequence={self.sequence}")
        suffix = f" [{', '.join(where)}]" if where else ""
        return f"{self.status.name}: {self.detail}{suffix}"


class InvalidCommandLength(PduError):
    """The PDU's length does not fit its content (SMPP 3.4 §3.2)."""

    status = CommandStatus.ESME_RINVCMDLEN


class FramingError(InvalidCommandLength):
    """command_length under 16 or over the stream's maximum: the stream is lost (GW-03)."""

    fatal = True


class InvalidCommandId(PduError):
    """command_id unknown to SMPP 3.4 (§5.1.2.1)."""

    status = CommandStatus.ESME_RINVCMDID


class InvalidMessageLength(PduError):
    """sm_length out of range or past the body, or both short_message and message_payload."""

    status = CommandStatus.ESME_RINVMSGLEN


class InvalidSystemId(PduError):
    """system_id too long or unterminated (§4.1.1)."""

    status = CommandStatus.ESME_RINVSYSID


class InvalidPassword(PduError):
    """password too long or unterminated (§4.1.1)."""

    status = CommandStatus.ESME_RINVPASWD


class InvalidSystemType(PduError):
    """system_type too long or unterminated (§4.1.1)."""

    status = CommandStatus.ESME_RINVSYSTYP


class InvalidAddressRange(PduError):
    """address_range too long or unterminated (§4.1.1); bind failed."""

    status = CommandStatus.ESME_RBINDFAIL


class InvalidServiceType(PduError):
    """service_type too long or unterminated (§5.2.11)."""

    status = CommandStatus.ESME_RINVSERTYP


class InvalidSourceAddress(PduError):
    """source_addr too long or unterminated."""

    status = CommandStatus.ESME_RINVSRCADR


class InvalidSourceTon(PduError):
    """source_addr_ton not a §5.2.5 value."""

    status = CommandStatus.ESME_RINVSRCTON


class InvalidSourceNpi(PduError):
    """source_addr_npi not a §5.2.6 value."""

    status = CommandStatus.ESME_RINVSRCNPI


class InvalidDestinationAddress(PduError):
    """destination_addr (or esme_addr) too long or unterminated."""

    status = CommandStatus.ESME_RINVDSTADR


class InvalidDestinationTon(PduError):
    """dest_addr_ton (or esme_addr_ton) not a §5.2.5 value."""

    status = CommandStatus.ESME_RINVDSTTON


class InvalidDestinationNpi(PduError):
    """dest_addr_npi (or esme_addr_npi) not a §5.2.6 value."""

    status = CommandStatus.ESME_RINVDSTNPI


class InvalidMessageId(PduError):
    """message_id too long or unterminated."""

    status = CommandStatus.ESME_RINVMSGID


class InvalidScheduleDeliveryTime(PduError):
    """schedule_delivery_time neither empty nor a §7.1 time."""

    status = CommandStatus.ESME_RINVSCHED


class InvalidValidityPeriod(PduError):
    """validity_period neither empty nor a §7.1 time."""

    status = CommandStatus.ESME_RINVEXPIRY


class InvalidFinalDate(PduError):
    """query_sm_resp final_date neither empty nor a §7.1 time."""

    status = CommandStatus.ESME_RQUERYFAIL


class InvalidEsmClass(PduError):
    """esm_class with a reserved message type (§5.2.12)."""

    status = CommandStatus.ESME_RINVESMCLASS


class InvalidPriorityFlag(PduError):
    """priority_flag over 3 (§5.2.14)."""

    status = CommandStatus.ESME_RINVPRTFLG


class InvalidRegisteredDelivery(PduError):
    """registered_delivery with reserved bits set (§5.2.17)."""

    status = CommandStatus.ESME_RINVREGDLVFLG


class InvalidReplaceIfPresentFlag(PduError):
    """replace_if_present_flag over 1 (§5.2.18)."""

    status = CommandStatus.ESME_RINVREPFLAG


class InvalidDefaultMessageId(PduError):
    """sm_default_msg_id 255, reserved (§5.2.23)."""

    status = CommandStatus.ESME_RINVDFTMSGID


class InvalidNumberOfDestinations(PduError):
    """submit_multi number_of_dests 0 or over 254 (§4.5.1)."""

    status = CommandStatus.ESME_RINVNUMDESTS


class InvalidDestFlag(PduError):
    """submit_multi dest_flag neither 1 nor 2 (§4.5.1.1)."""

    status = CommandStatus.ESME_RINVDESTFLAG


class InvalidDistributionListName(PduError):
    """submit_multi dl_name too long or unterminated (§4.5.1.1)."""

    status = CommandStatus.ESME_RINVDLNAME


class InvalidTlvStream(PduError):
    """The TLVs do not tile the rest of the body (§3.2.4)."""

    status = CommandStatus.ESME_RINVOPTPARSTREAM


class InvalidTlvLength(PduError):
    """A known TLV whose length is not its §5.3.2 size."""

    status = CommandStatus.ESME_RINVPARLEN


class InvalidTlvValue(PduError):
    """A known TLV whose value §5.3.2 does not allow."""

    status = CommandStatus.ESME_RINVOPTPARAMVAL


class InvalidFieldValue(PduError):
    """Building a PDU with a value of the wrong type or range (no wire status of its own)."""

    status = CommandStatus.ESME_RSYSERR


# -- TLVs --------------------------------------------------------------------------------


class Tlv(NamedTuple):
    """One optional parameter (§3.2.4.1): ``tag`` and the raw ``value`` octets."""

    tag: int
    value: bytes

    @classmethod
    def u8(cls, tag: int, value: int) -> Tlv:
        """A TLV holding a 1-octet integer."""
        return cls(int(tag), _pack_int(tag, value, 1))

    @classmethod
    def u16(cls, tag: int, value: int) -> Tlv:
        """A TLV holding a 2-octet big-endian integer."""
        return cls(int(tag), _pack_int(tag, value, 2))

    @classmethod
    def u32(cls, tag: int, value: int) -> Tlv:
        """A TLV holding a 4-octet big-endian integer."""
        return cls(int(tag), _pack_int(tag, value, 4))

    @classmethod
    def cstring(cls, tag: int, value: str) -> Tlv:
        """A TLV holding a C-Octet String (Latin-1, NUL-terminated)."""
        if not isinstance(value, str) or "\0" in value:
            raise InvalidTlvValue(f"TLV 0x{tag:04x}: {value!r} is not a string without NUL")
        try:
            return cls(int(tag), value.encode("latin-1") + b"\0")
        except UnicodeEncodeError:
            raise InvalidTlvValue(f"TLV 0x{tag:04x}: {value!r} is not Latin-1") from None


def _pack_int(tag: int, value: int, size: int) -> bytes:
    if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise InvalidTlvValue(f"TLV 0x{tag:04x}: {value!r} does not fit {size} octet(s)")
    return value.to_bytes(size, "big")


#: §5.3.2 value sizes (min, max octets) of the standard TLVs. source_telematics_id is
#: "Integer 2" in the tag table but 1 octet in §5.3.2.9, so both are accepted.
_TLV_SIZES: Final[dict[int, tuple[int, int]]] = {
    Tag.DEST_ADDR_SUBUNIT: (1, 1),
    Tag.DEST_NETWORK_TYPE: (1, 1),
    Tag.DEST_BEARER_TYPE: (1, 1),
    Tag.DEST_TELEMATICS_ID: (2, 2),
    Tag.SOURCE_ADDR_SUBUNIT: (1, 1),
    Tag.SOURCE_NETWORK_TYPE: (1, 1),
    Tag.SOURCE_BEARER_TYPE: (1, 1),
    Tag.SOURCE_TELEMATICS_ID: (1, 2),
    Tag.QOS_TIME_TO_LIVE: (4, 4),
    Tag.PAYLOAD_TYPE: (1, 1),
    Tag.ADDITIONAL_STATUS_INFO_TEXT: (1, 256),
    Tag.RECEIPTED_MESSAGE_ID: (1, 65),
    Tag.MS_MSG_WAIT_FACILITIES: (1, 1),
    Tag.PRIVACY_INDICATOR: (1, 1),
    Tag.SOURCE_SUBADDRESS: (2, 23),
    Tag.DEST_SUBADDRESS: (2, 23),
    Tag.USER_MESSAGE_REFERENCE: (2, 2),
    Tag.USER_RESPONSE_CODE: (1, 1),
    Tag.SOURCE_PORT: (2, 2),
    Tag.DESTINATION_PORT: (2, 2),
    Tag.SAR_MSG_REF_NUM: (2, 2),
    Tag.LANGUAGE_INDICATOR: (1, 1),
    Tag.SAR_TOTAL_SEGMENTS: (1, 1),
    Tag.SAR_SEGMENT_SEQNUM: (1, 1),
    Tag.SC_INTERFACE_VERSION: (1, 1),
    Tag.CALLBACK_NUM_PRES_IND: (1, 1),
    Tag.CALLBACK_NUM_ATAG: (1, 65),
    Tag.NUMBER_OF_MESSAGES: (1, 1),
    Tag.CALLBACK_NUM: (4, 19),
    Tag.DPF_RESULT: (1, 1),
    Tag.SET_DPF: (1, 1),
    Tag.MS_AVAILABILITY_STATUS: (1, 1),
    Tag.NETWORK_ERROR_CODE: (3, 3),
    Tag.MESSAGE_PAYLOAD: (0, 0xFFFF),
    Tag.DELIVERY_FAILURE_REASON: (1, 1),
    Tag.MORE_MESSAGES_TO_SEND: (1, 1),
    Tag.MESSAGE_STATE: (1, 1),
    Tag.USSD_SERVICE_OP: (1, 1),
    Tag.DISPLAY_TIME: (1, 1),
    Tag.SMS_SIGNAL: (2, 2),
    Tag.MS_VALIDITY: (1, 1),
    Tag.ALERT_ON_MESSAGE_DELIVERY: (0, 0),
    Tag.ITS_REPLY_TYPE: (1, 1),
    Tag.ITS_SESSION_INFO: (2, 2),
}
# Plain-int keys: IntEnum hashing is the same, but lookups by int skip enum machinery.
_TLV_SIZES_BY_INT: Final[dict[int, tuple[int, int]]] = {int(k): v for k, v in _TLV_SIZES.items()}
_CSTRING_TLVS: Final = frozenset(
    {int(Tag.ADDITIONAL_STATUS_INFO_TEXT), int(Tag.RECEIPTED_MESSAGE_ID)}
)
_NONZERO_TLVS: Final = frozenset({int(Tag.SAR_TOTAL_SEGMENTS), int(Tag.SAR_SEGMENT_SEQNUM)})
_VALUE_CHECKED_TLVS: Final = _CSTRING_TLVS | _NONZERO_TLVS
_MESSAGE_PAYLOAD: Final = int(Tag.MESSAGE_PAYLOAD)


def _check_tlv_value(tag: int, value: bytes) -> None:
    """Length and value rules of the known tags; unknown tags accept anything."""
    size = _TLV_SIZES_BY_INT.get(tag)
    if size is not None and not size[0] <= len(value) <= size[1]:
        name = Tag(tag).name.lower()
        want = str(size[0]) if size[0] == size[1] else f"{size[0]}..{size[1]}"
        raise InvalidTlvLength(f"{name} has {len(value)} octets, §5.3.2 says {want}")
    if tag in _VALUE_CHECKED_TLVS:
        name = Tag(tag).name.lower()
        if tag in _CSTRING_TLVS:
            if value[-1] != 0 or 0 in value[:-1]:
                raise InvalidTlvValue(f"{name} is not a NUL-terminated C-Octet String")
        elif value == b"\0":
            raise InvalidTlvValue(f"{name} is 0; segments count from 1 (§5.3.2.23)")


def _normalize_tlvs(name: str, value: object) -> tuple[Tlv, ...]:
    """Check a TLV sequence given to a constructor; return it as a tuple of :class:`Tlv`."""
    if not isinstance(value, tuple | list):
        raise InvalidFieldValue(f"{name} must be a tuple of Tlv, not {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidFieldValue(f"{name}: {item!r} is not a Tlv(tag, value)")
        tag, octets = item
        if not isinstance(tag, int) or not 0 <= tag <= 0xFFFF:
            raise InvalidFieldValue(f"{name}: tag {tag!r} is not a 16-bit integer")
        if not isinstance(octets, bytes):
            raise InvalidFieldValue(f"{name}: value of tag 0x{tag:04x} is not bytes")
        if len(octets) > 0xFFFF:
            raise InvalidTlvLength(f"{name}: tag 0x{tag:04x} value over 65535 octets")
        _check_tlv_value(tag, octets)
        out.append(item if type(item) is Tlv else Tlv(int(tag), octets))
    return tuple(out)


_TLV_HEAD: Final = struct.Struct(">HH")
_TLV_HEAD_PACK: Final = _TLV_HEAD.pack
_TLV_HEAD_UNPACK: Final = _TLV_HEAD.unpack_from
_TUPLE_NEW: Final = cast(Callable[[type[Tlv], tuple[int, bytes]], Tlv], tuple.__new__)


def encode_tlv(tlv: Tlv) -> bytes:
    """The wire form of one TLV (tag, length, value)."""
    tag, value = tlv
    return _TLV_HEAD_PACK(tag, len(value)) + value


def _encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    out = b""
    for tag, value in tlvs:
        out += _TLV_HEAD_PACK(tag, len(value)) + value
    return out


def _read_tlvs(data: bytes, pos: int, end: int) -> tuple[tuple[Tlv, ...], bool]:
    """The TLVs that exactly tile ``data[pos:end]``, and whether one is message_payload."""
    tlvs = []
    payload = False
    while pos < end:
        if end - pos < 4:
            raise InvalidTlvStream(f"{end - pos} octet(s) after the last TLV: no room for one")
        tag, length = _TLV_HEAD_UNPACK(data, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            raise InvalidTlvStream(
                f"TLV 0x{tag:04x} claims {length} octets, {end - start} remain in the body"
            )
        value = data[start:pos]
        size = _TLV_SIZES_BY_INT.get(tag)
        if size is not None:
            if tag == _MESSAGE_PAYLOAD:
                payload = True
            elif not size[0] <= length <= size[1] or tag in _VALUE_CHECKED_TLVS:
                _check_tlv_value(tag, value)
        tlvs.append(_TUPLE_NEW(Tlv, (tag, value)))
    return tuple(tlvs), payload


# TLV sections repeat: a USSD dialogue sends the same ussd_service_op and its_session_info
# many times, and an ESME's plain submit_sm often carries the same one or two TLVs. Short
# sections are cached both ways (decoded tuples are immutable, so sharing them is safe);
# the caches are cleared when full, so they stay small whatever the traffic.
_TLV_CACHE_MAX_ENTRIES: Final = 4096
_TLV_CACHE_MAX_OCTETS: Final = 64
#: section octets -> (TLVs, whether one is message_payload)
_DECODED_TLV_SECTIONS: Final[dict[bytes, tuple[tuple[Tlv, ...], bool]]] = {}
_ENCODED_TLV_SECTIONS: Final[dict[tuple[Tlv, ...], bytes]] = {}


def _read_tlv_section(data: bytes, pos: int, end: int) -> tuple[tuple[Tlv, ...], bool]:
    """:func:`_read_tlvs` through the section cache, and whether message_payload is there."""
    if end - pos > _TLV_CACHE_MAX_OCTETS:
        return _read_tlvs(data, pos, end)
    section = data[pos:end]
    entry = _DECODED_TLV_SECTIONS.get(section)
    if entry is None:
        entry = _read_tlvs(section, 0, end - pos)
        if len(_DECODED_TLV_SECTIONS) >= _TLV_CACHE_MAX_ENTRIES:
            _DECODED_TLV_SECTIONS.clear()
        _DECODED_TLV_SECTIONS[section] = entry
    return entry


def _encode_tlv_section(tlvs: tuple[Tlv, ...]) -> bytes:
    """:func:`_encode_tlvs` through the section cache."""
    wire = _ENCODED_TLV_SECTIONS.get(tlvs)
    if wire is None:
        wire = _encode_tlvs(tlvs)
        if len(wire) <= _TLV_CACHE_MAX_OCTETS:
            if len(_ENCODED_TLV_SECTIONS) >= _TLV_CACHE_MAX_ENTRIES:
                _ENCODED_TLV_SECTIONS.clear()
            _ENCODED_TLV_SECTIONS[tlvs] = wire
    return wire


def decode_tlvs(data: bytes) -> tuple[Tlv, ...]:
    """The TLVs of a TLV stream (e.g. one stored with :func:`encode_tlv`), checked."""
    return _read_tlvs(bytes(data), 0, len(data))[0]


def _check_payload_conflict(short_message: bytes, tlvs: tuple[Tlv, ...]) -> None:
    """§5.3.2.32: with a message_payload TLV the short_message must be empty."""
    if short_message:
        for tag, _ in tlvs:
            if tag == _MESSAGE_PAYLOAD:
                raise InvalidMessageLength(
                    "short_message and message_payload both present; sm_length must be 0"
                )


# -- field kinds -------------------------------------------------------------------------
#
# A kind describes one mandatory field on the wire: how to check a Python value for it,
# read it with a _Reader, write it, and the source of a cheap inline check that the
# generated constructors use for the common case (falling back to ``check`` for the
# precise error).


class _Reader:
    """A cursor over one whole PDU (header included) for the generic decoder."""

    __slots__ = ("data", "end", "pos", "text")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.text = data.decode("latin-1")
        self.pos = 16
        self.end = len(data)

    def cstring(self, name: str, max_octets: int, error: type[PduError]) -> str:
        pos = self.pos
        if pos >= self.end:
            raise InvalidCommandLength(f"the body ends before {name}")
        nul = self.text.find("\0", pos, pos + max_octets)
        if nul < 0:
            if self.end - pos < max_octets:
                raise error(f"{name} is not NUL-terminated before the end of the body")
            raise error(f"{name} has no NUL within its maximum of {max_octets} octets")
        self.pos = nul + 1
        return self.text[pos:nul]

    def u8(self, name: str) -> int:
        pos = self.pos
        if pos >= self.end:
            raise InvalidCommandLength(f"the body ends before {name}")
        self.pos = pos + 1
        return self.data[pos]

    def u32(self, name: str) -> int:
        pos = self.pos
        if self.end - pos < 4:
            raise InvalidCommandLength(f"the body ends inside {name}")
        self.pos = pos + 4
        return int.from_bytes(self.data[pos : pos + 4], "big")


class _Kind:
    """Base of the field kinds."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        """Raise the field's error if ``value`` is not valid; return it, normalised."""
        raise NotImplementedError

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        """A Python expression true only when ``var`` is certainly valid as it is.

        ``me`` names this kind in the generated code's namespace ``ns``, where the kind may
        put constants of its own under names starting with ``me``.
        """
        return "False"

    def read(self, r: _Reader, name: str) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> bytes:
        raise NotImplementedError


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _CString(_Kind):
    """C-Octet String, Var. max ``max_octets`` (the NUL included)."""

    __slots__ = ("error", "max_octets")

    def __init__(self, max_octets: int, error: type[PduError]) -> None:
        self.max_octets = max_octets
        self.error = error

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.error(f"{name} must be str, not {type(value).__name__}")
        if "\0" in value:
            raise self.error(f"{name} {_describe(value)} contains NUL")
        if len(value) >= self.max_octets:
            raise self.error(
                f"{name} {_describe(value)} is longer than {self.max_octets - 1} characters"
            )
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise self.error(f"{name} {_describe(value)} is not Latin-1") from None
        return value

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return (
            f"{var}.__class__ is str and len({var}) < {self.max_octets} "
            f"and {var}.isascii() and '\\x00' not in {var}"
        )

    def read(self, r: _Reader, name: str) -> Any:
        return r.cstring(name, self.max_octets, self.error)

    def write(self, value: Any) -> bytes:
        return cast(str, value).encode("latin-1") + b"\0"

    def pattern(self) -> str:
        return f"([^\\x00]{{0,{self.max_octets - 1}}})\\x00"


_TIME_RX: Final = re.compile(r"[0-9]{15}[-+R]", re.ASCII)


class _Time(_CString):
    """§7.1 time: C-Octet String, Fixed 1 (empty) or 17 octets, ``YYMMDDhhmmsstnnp``."""

    __slots__ = ()

    def __init__(self, error: type[PduError]) -> None:
        super().__init__(17, error)

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.error(f"{name} must be str, not {type(value).__name__}")
        if value and _TIME_RX.fullmatch(value) is None:
            raise self.error(f"{name} {_describe(value)} is neither empty nor YYMMDDhhmmsstnnp")
        return value

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return f"{var} == ''"

    def read(self, r: _Reader, name: str) -> Any:
        return self.check(name, r.cstring(name, 17, self.error))

    def pattern(self) -> str:
        return "((?:[0-9]{15}[-+R])?)\\x00"


class _U8(_Kind):
    """Integer, 1 octet, optionally restricted to ``allowed`` values."""

    __slots__ = ("allowed", "error")

    def __init__(
        self, error: type[PduError] = InvalidFieldValue, allowed: Iterable[int] = range(256)
    ) -> None:
        self.error = error
        self.allowed = frozenset(allowed)

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, int):
            raise self.error(f"{name} must be int, not {type(value).__name__}")
        if value not in self.allowed:
            raise self.error(f"{name} {value!r} is not allowed here")
        return value

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        ns[f"{me}_allowed"] = self.allowed
        return f"{var} in {me}_allowed"

    def read(self, r: _Reader, name: str) -> Any:
        value = r.u8(name)
        if value not in self.allowed:
            raise self.error(f"{name} {value} is not allowed here")
        return value

    def write(self, value: Any) -> bytes:
        return bytes((value,))

    def pattern(self) -> str:
        if len(self.allowed) == 256:
            return "(.)"
        return "([" + "".join(f"\\x{v:02x}" for v in sorted(self.allowed)) + "])"


class _U32(_Kind):
    """Integer, 4 octets."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, int):
            raise InvalidFieldValue(f"{name} must be int, not {type(value).__name__}")
        if not 0 <= value <= 0xFFFFFFFF:
            raise InvalidFieldValue(f"{name} {value} does not fit 32 bits")
        return value

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return f"{var}.__class__ is int and 0 <= {var} <= 0xFFFFFFFF"

    def read(self, r: _Reader, name: str) -> Any:
        return r.u32(name)

    def write(self, value: Any) -> bytes:
        return cast(int, value).to_bytes(4, "big")


class _ShortMessage(_Kind):
    """sm_length (Integer, 1) followed by short_message (Octet String, 0-254)."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, bytes):
            raise InvalidFieldValue(f"{name} must be bytes, not {type(value).__name__}")
        if len(value) > 254:
            raise InvalidMessageLength(f"{name} has {len(value)} octets, at most 254 fit")
        return value

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return f"{var}.__class__ is bytes and len({var}) <= 254"

    def read(self, r: _Reader, name: str) -> Any:
        length = r.u8("sm_length")
        if length > 254:
            raise InvalidMessageLength(f"sm_length {length} is over 254")
        pos = r.pos
        if pos + length > r.end:
            raise InvalidMessageLength(
                f"sm_length {length} runs past the end of the body ({r.end - pos} left)"
            )
        r.pos = pos + length
        return r.data[pos : pos + length]

    def write(self, value: Any) -> bytes:
        return bytes((len(value),)) + cast(bytes, value)


class _Tlvs(_Kind):
    """The optional parameters: every octet after the mandatory fields."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        return _normalize_tlvs(name, value)

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return f"{var} == ()"

    def read(self, r: _Reader, name: str) -> Any:
        tlvs = _read_tlv_section(r.data, r.pos, r.end)[0]
        r.pos = r.end
        return tlvs

    def write(self, value: Any) -> bytes:
        return _encode_tlv_section(value)


_TON: Final = frozenset(Ton)
_NPI: Final = frozenset(Npi)
_ESM_CLASS: Final = frozenset(v for v in range(256) if (v >> 2) & 0x0F in {0, 1, 2, 4, 6, 8})
_REGISTERED_DELIVERY: Final = frozenset(v for v in range(0x20) if v & 0x03 != 0x03)

_SYSTEM_ID: Final = _CString(16, InvalidSystemId)
_PASSWORD: Final = _CString(9, InvalidPassword)
_SYSTEM_TYPE: Final = _CString(13, InvalidSystemType)
_ADDRESS_RANGE: Final = _CString(41, InvalidAddressRange)
_SERVICE_TYPE: Final = _CString(6, InvalidServiceType)
_SOURCE_ADDR: Final = _CString(21, InvalidSourceAddress)
_SOURCE_ADDR_65: Final = _CString(65, InvalidSourceAddress)
_DESTINATION_ADDR: Final = _CString(21, InvalidDestinationAddress)
_DESTINATION_ADDR_65: Final = _CString(65, InvalidDestinationAddress)
_MESSAGE_ID: Final = _CString(65, InvalidMessageId)
_DL_NAME: Final = _CString(21, InvalidDistributionListName)
_SCHEDULE: Final = _Time(InvalidScheduleDeliveryTime)
_VALIDITY: Final = _Time(InvalidValidityPeriod)
_FINAL_DATE: Final = _Time(InvalidFinalDate)
_OCTET: Final = _U8()
_SOURCE_TON: Final = _U8(InvalidSourceTon, _TON)
_SOURCE_NPI: Final = _U8(InvalidSourceNpi, _NPI)
_DEST_TON: Final = _U8(InvalidDestinationTon, _TON)
_DEST_NPI: Final = _U8(InvalidDestinationNpi, _NPI)
_ESM: Final = _U8(InvalidEsmClass, _ESM_CLASS)
_PRIORITY: Final = _U8(InvalidPriorityFlag, range(4))
_REG_DELIVERY: Final = _U8(InvalidRegisteredDelivery, _REGISTERED_DELIVERY)
_REPLACE_FLAG: Final = _U8(InvalidReplaceIfPresentFlag, range(2))
_DEFAULT_MSG_ID: Final = _U8(InvalidDefaultMessageId, range(255))
_WORD: Final = _U32()
_SHORT_MESSAGE: Final = _ShortMessage()
_TLV_LIST: Final = _Tlvs()

_KIND: Final = "ussdsim.pdu.kind"


def _field(kind: _Kind, default: object) -> Any:
    """An attrs field carrying its wire kind (checks are in the generated ``__new__``)."""
    return attrs.field(default=default, metadata={_KIND: kind})


def _cstr(kind: _CString) -> Any:
    return _field(kind, "")


def _u8(kind: _U8 = _OCTET, default: int = 0) -> Any:
    return _field(kind, default)


# -- PDU classes ---------------------------------------------------------------------------

_R = TypeVar("_R", bound="BasePdu")
_P = TypeVar("_P", bound="BasePdu")


@attrs.frozen(kw_only=True)
class BasePdu:
    """The header every PDU shares (§3.2): command_id (per class), status and sequence."""

    command_id: ClassVar[CommandId]
    #: True for resps whose body §4 omits when command_status is not 0 (e.g. §4.4.2).
    empty_body_on_error: ClassVar[bool] = False

    sequence: int = attrs.field(metadata={_KIND: _WORD})
    status: int = attrs.field(default=0, metadata={_KIND: _WORD})

    def with_sequence(self: _P, sequence: int) -> _P:
        """The same PDU with another sequence number (cheaper than ``attrs.evolve``)."""
        raise NotImplementedError  # replaced per class by _install_constructors


@attrs.frozen(kw_only=True)
class BaseRequest(BasePdu, Generic[_R]):
    """A PDU answered by a resp of class ``response_class``."""

    response_class: ClassVar[type[BasePdu]]

    def response(self, status: int = 0, **fields: Any) -> _R:
        """The matching resp with this request's sequence number."""
        return cast(_R, self.response_class(sequence=self.sequence, status=status, **fields))


@attrs.frozen(kw_only=True)
class BaseResponse(BasePdu):
    """A resp (command_id with bit 31 set)."""


class _TlvAccessors:
    """Typed reads of the standard TLVs; each is None when the TLV is absent.

    The first occurrence of a tag counts. Values have been length-checked on the way in.
    """

    __slots__ = ()
    tlvs: tuple[Tlv, ...]

    def tlv(self, tag: int) -> bytes | None:
        """The value of the first TLV with ``tag``, or None."""
        for t, value in self.tlvs:
            if t == tag:
                return value
        return None

    def _int(self, tag: int) -> int | None:
        value = self.tlv(tag)
        return None if value is None else int.from_bytes(value, "big")

    @property
    def ussd_service_op(self) -> int | None:
        """ussd_service_op (§5.3.2.44; see :class:`UssdOp`, SPEC GW-10)."""
        return self._int(0x0501)

    @property
    def its_session_info(self) -> int | None:
        """its_session_info (§5.3.2.43), the 2 octets as one big-endian integer."""
        return self._int(0x1383)

    @property
    def message_payload(self) -> bytes | None:
        """message_payload (§5.3.2.32)."""
        return self.tlv(0x0424)

    @property
    def sar_msg_ref_num(self) -> int | None:
        """sar_msg_ref_num (§5.3.2.22)."""
        return self._int(0x020C)

    @property
    def sar_total_segments(self) -> int | None:
        """sar_total_segments (§5.3.2.23)."""
        return self._int(0x020E)

    @property
    def sar_segment_seqnum(self) -> int | None:
        """sar_segment_seqnum (§5.3.2.24)."""
        return self._int(0x020F)

    @property
    def user_message_reference(self) -> int | None:
        """user_message_reference (§5.3.2.17)."""
        return self._int(0x0204)

    @property
    def receipted_message_id(self) -> str | None:
        """receipted_message_id (§5.3.2.12) without its NUL."""
        value = self.tlv(0x001E)
        return None if value is None else value[:-1].decode("latin-1")

    @property
    def message_state(self) -> int | None:
        """message_state (§5.3.2.35; see :class:`MessageState`)."""
        return self._int(0x0427)

    @property
    def network_error_code(self) -> tuple[int, int] | None:
        """network_error_code (§5.3.2.31) as (network type, error code)."""
        value = self.tlv(0x0423)
        return None if value is None else (value[0], value[1] << 8 | value[2])

    @property
    def sc_interface_version(self) -> int | None:
        """sc_interface_version (§5.3.2.25)."""
        return self._int(0x0210)

    @property
    def ms_availability_status(self) -> int | None:
        """ms_availability_status (§5.3.2.30)."""
        return self._int(0x0422)

    @property
    def delivery_failure_reason(self) -> int | None:
        """delivery_failure_reason (§5.3.2.33)."""
        return self._int(0x0425)


# ---- resps first, so requests can name them ----


@attrs.frozen(kw_only=True)
class GenericNack(BaseResponse):
    """generic_nack (§4.3): header only."""

    command_id = CommandId.GENERIC_NACK


@attrs.frozen(kw_only=True)
class _BindResp(BaseResponse, _TlvAccessors):
    empty_body_on_error = True

    system_id: str = _cstr(_SYSTEM_ID)
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


@attrs.frozen(kw_only=True)
class BindTransmitterResp(_BindResp):
    """bind_transmitter_resp (§4.1.2): system_id, optional sc_interface_version."""

    command_id = CommandId.BIND_TRANSMITTER_RESP


@attrs.frozen(kw_only=True)
class BindReceiverResp(_BindResp):
    """bind_receiver_resp (§4.1.4)."""

    command_id = CommandId.BIND_RECEIVER_RESP


@attrs.frozen(kw_only=True)
class BindTransceiverResp(_BindResp):
    """bind_transceiver_resp (§4.1.6)."""

    command_id = CommandId.BIND_TRANSCEIVER_RESP


@attrs.frozen(kw_only=True)
class UnbindResp(BaseResponse):
    """unbind_resp (§4.2.2): header only."""

    command_id = CommandId.UNBIND_RESP


@attrs.frozen(kw_only=True)
class EnquireLinkResp(BaseResponse):
    """enquire_link_resp (§4.11.2): header only."""

    command_id = CommandId.ENQUIRE_LINK_RESP


@attrs.frozen(kw_only=True)
class SubmitSmResp(BaseResponse):
    """submit_sm_resp (§4.4.2); no body when status is not 0 and message_id is empty."""

    command_id = CommandId.SUBMIT_SM_RESP
    empty_body_on_error = True

    message_id: str = _cstr(_MESSAGE_ID)


@attrs.frozen(kw_only=True)
class DeliverSmResp(BaseResponse):
    """deliver_sm_resp (§4.6.2); message_id is unused by §4.6.2 and normally empty."""

    command_id = CommandId.DELIVER_SM_RESP
    empty_body_on_error = True

    message_id: str = _cstr(_MESSAGE_ID)


@attrs.frozen(kw_only=True)
class DataSmResp(BaseResponse, _TlvAccessors):
    """data_sm_resp (§4.7.2): message_id and TLVs (delivery_failure_reason, ...)."""

    command_id = CommandId.DATA_SM_RESP
    empty_body_on_error = True

    message_id: str = _cstr(_MESSAGE_ID)
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


@attrs.frozen(kw_only=True)
class QuerySmResp(BaseResponse):
    """query_sm_resp (§4.8.2)."""

    command_id = CommandId.QUERY_SM_RESP
    empty_body_on_error = True

    message_id: str = _cstr(_MESSAGE_ID)
    final_date: str = _cstr(_FINAL_DATE)
    message_state: int = _u8()
    error_code: int = _u8()


@attrs.frozen(kw_only=True)
class CancelSmResp(BaseResponse):
    """cancel_sm_resp (§4.9.2): header only."""

    command_id = CommandId.CANCEL_SM_RESP


@attrs.frozen(kw_only=True)
class ReplaceSmResp(BaseResponse):
    """replace_sm_resp (§4.10.2): header only."""

    command_id = CommandId.REPLACE_SM_RESP


@attrs.frozen(kw_only=True, weakref_slot=False)  # see _install_constructors
class UnsuccessSme:
    """One unsuccess_sme of submit_multi_resp (§4.5.2.1)."""

    dest_addr_ton: int = _u8(_DEST_TON)
    dest_addr_npi: int = _u8(_DEST_NPI)
    destination_addr: str = _cstr(_DESTINATION_ADDR)
    error_status_code: int = _field(_WORD, 0)


class _UnsuccessSmes(_Kind):
    """no_unsuccess (Integer, 1) and that many unsuccess_sme."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, tuple | list):
            raise InvalidFieldValue(f"{name} must be a tuple of UnsuccessSme")
        if len(value) > 255:
            raise InvalidFieldValue(f"{name}: {len(value)} entries, at most 255 fit")
        for item in value:
            if type(item) is not UnsuccessSme:
                raise InvalidFieldValue(f"{name}: {_describe(item)} is not an UnsuccessSme")
        return tuple(value)

    def fast_ok(self, var: str, me: str, ns: dict[str, Any]) -> str:
        return f"{var} == ()"

    def read(self, r: _Reader, name: str) -> Any:
        count = r.u8("no_unsuccess")
        items = []
        for _ in range(count):
            items.append(
                _MAKE[UnsuccessSme](
                    _DEST_TON.read(r, "dest_addr_ton"),
                    _DEST_NPI.read(r, "dest_addr_npi"),
                    _DESTINATION_ADDR.read(r, "destination_addr"),
                    r.u32("error_status_code"),
                )
            )
        return tuple(items)

    def write(self, value: Any) -> bytes:
        out = bytes((len(value),))
        for item in value:
            out += (
                bytes((item.dest_addr_ton, item.dest_addr_npi))
                + _DESTINATION_ADDR.write(item.destination_addr)
                + item.error_status_code.to_bytes(4, "big")
            )
        return out


@attrs.frozen(kw_only=True)
class SubmitMultiResp(BaseResponse):
    """submit_multi_resp (§4.5.2)."""

    command_id = CommandId.SUBMIT_MULTI_RESP
    empty_body_on_error = True

    message_id: str = _cstr(_MESSAGE_ID)
    unsuccess_smes: tuple[UnsuccessSme, ...] = _field(_UnsuccessSmes(), ())


# ---- requests ----


@attrs.frozen(kw_only=True)
class _Bind(BaseRequest[_R]):
    system_id: str = _cstr(_SYSTEM_ID)
    password: str = _cstr(_PASSWORD)
    system_type: str = _cstr(_SYSTEM_TYPE)
    interface_version: int = _u8(default=0x34)
    addr_ton: int = _u8()
    addr_npi: int = _u8()
    address_range: str = _cstr(_ADDRESS_RANGE)


@attrs.frozen(kw_only=True)
class BindTransmitter(_Bind[BindTransmitterResp]):
    """bind_transmitter (§4.1.1)."""

    command_id = CommandId.BIND_TRANSMITTER
    response_class = BindTransmitterResp


@attrs.frozen(kw_only=True)
class BindReceiver(_Bind[BindReceiverResp]):
    """bind_receiver (§4.1.3)."""

    command_id = CommandId.BIND_RECEIVER
    response_class = BindReceiverResp


@attrs.frozen(kw_only=True)
class BindTransceiver(_Bind[BindTransceiverResp]):
    """bind_transceiver (§4.1.5)."""

    command_id = CommandId.BIND_TRANSCEIVER
    response_class = BindTransceiverResp


@attrs.frozen(kw_only=True)
class Outbind(BasePdu):
    """outbind (§4.1.7): the SMSC asks the ESME to bind; no resp."""

    command_id = CommandId.OUTBIND

    system_id: str = _cstr(_SYSTEM_ID)
    password: str = _cstr(_PASSWORD)


@attrs.frozen(kw_only=True)
class Unbind(BaseRequest[UnbindResp]):
    """unbind (§4.2.1): header only."""

    command_id = CommandId.UNBIND
    response_class = UnbindResp


@attrs.frozen(kw_only=True)
class EnquireLink(BaseRequest[EnquireLinkResp]):
    """enquire_link (§4.11.1): header only."""

    command_id = CommandId.ENQUIRE_LINK
    response_class = EnquireLinkResp


@attrs.frozen(kw_only=True)
class _ShortMessagePdu(BaseRequest[_R], _TlvAccessors):
    service_type: str = _cstr(_SERVICE_TYPE)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR)
    dest_addr_ton: int = _u8(_DEST_TON)
    dest_addr_npi: int = _u8(_DEST_NPI)
    destination_addr: str = _cstr(_DESTINATION_ADDR)
    esm_class: int = _u8(_ESM)
    protocol_id: int = _u8()
    priority_flag: int = _u8(_PRIORITY)
    schedule_delivery_time: str = _cstr(_SCHEDULE)
    validity_period: str = _cstr(_VALIDITY)
    registered_delivery: int = _u8(_REG_DELIVERY)
    replace_if_present_flag: int = _u8(_REPLACE_FLAG)
    data_coding: int = _u8()
    sm_default_msg_id: int = _u8(_DEFAULT_MSG_ID)
    short_message: bytes = _field(_SHORT_MESSAGE, b"")
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


@attrs.frozen(kw_only=True)
class SubmitSm(_ShortMessagePdu[SubmitSmResp]):
    """submit_sm (§4.4.1); in this simulator also the handset's USSD input (GW-10)."""

    command_id = CommandId.SUBMIT_SM
    response_class = SubmitSmResp


@attrs.frozen(kw_only=True)
class DeliverSm(_ShortMessagePdu[DeliverSmResp]):
    """deliver_sm (§4.6.1): MT SMS, receipts, and USSD menus and texts (GW-10)."""

    command_id = CommandId.DELIVER_SM
    response_class = DeliverSmResp


@attrs.frozen(kw_only=True)
class DataSm(BaseRequest[DataSmResp], _TlvAccessors):
    """data_sm (§4.7.1); the text travels in message_payload."""

    command_id = CommandId.DATA_SM
    response_class = DataSmResp

    service_type: str = _cstr(_SERVICE_TYPE)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR_65)
    dest_addr_ton: int = _u8(_DEST_TON)
    dest_addr_npi: int = _u8(_DEST_NPI)
    destination_addr: str = _cstr(_DESTINATION_ADDR_65)
    esm_class: int = _u8(_ESM)
    registered_delivery: int = _u8(_REG_DELIVERY)
    data_coding: int = _u8()
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


@attrs.frozen(kw_only=True)
class QuerySm(BaseRequest[QuerySmResp]):
    """query_sm (§4.8.1)."""

    command_id = CommandId.QUERY_SM
    response_class = QuerySmResp

    message_id: str = _cstr(_MESSAGE_ID)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR)


@attrs.frozen(kw_only=True)
class CancelSm(BaseRequest[CancelSmResp]):
    """cancel_sm (§4.9.1)."""

    command_id = CommandId.CANCEL_SM
    response_class = CancelSmResp

    service_type: str = _cstr(_SERVICE_TYPE)
    message_id: str = _cstr(_MESSAGE_ID)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR)
    dest_addr_ton: int = _u8(_DEST_TON)
    dest_addr_npi: int = _u8(_DEST_NPI)
    destination_addr: str = _cstr(_DESTINATION_ADDR)


@attrs.frozen(kw_only=True)
class ReplaceSm(BaseRequest[ReplaceSmResp]):
    """replace_sm (§4.10.1); SMPP 3.4 gives it no TLVs."""

    command_id = CommandId.REPLACE_SM
    response_class = ReplaceSmResp

    message_id: str = _cstr(_MESSAGE_ID)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR)
    schedule_delivery_time: str = _cstr(_SCHEDULE)
    validity_period: str = _cstr(_VALIDITY)
    registered_delivery: int = _u8(_REG_DELIVERY)
    sm_default_msg_id: int = _u8(_DEFAULT_MSG_ID)
    short_message: bytes = _field(_SHORT_MESSAGE, b"")


@attrs.frozen(kw_only=True, weakref_slot=False)  # see _install_constructors
class SmeAddress:
    """A submit_multi destination that is an SME address (dest_flag 1, §4.5.1.1)."""

    dest_addr_ton: int = _u8(_DEST_TON)
    dest_addr_npi: int = _u8(_DEST_NPI)
    destination_addr: str = _cstr(_DESTINATION_ADDR)


@attrs.frozen(kw_only=True, weakref_slot=False)  # see _install_constructors
class DistributionList:
    """A submit_multi destination that is a distribution list (dest_flag 2, §4.5.1.1)."""

    dl_name: str = _cstr(_DL_NAME)


class _DestAddresses(_Kind):
    """number_of_dests (Integer, 1, 1..254) and the dest_address entries (§4.5.1.1)."""

    __slots__ = ()

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, tuple | list):
            raise InvalidFieldValue(f"{name} must be a tuple of SmeAddress/DistributionList")
        if not 1 <= len(value) <= 254:
            raise InvalidNumberOfDestinations(f"{len(value)} destinations, §4.5.1 allows 1-254")
        for item in value:
            if type(item) is not SmeAddress and type(item) is not DistributionList:
                raise InvalidDestFlag(f"{name}: {_describe(item)} is not a destination")
        return tuple(value)

    def read(self, r: _Reader, name: str) -> Any:
        count = r.u8("number_of_dests")
        if not 1 <= count <= 254:
            raise InvalidNumberOfDestinations(f"number_of_dests {count}, §4.5.1 allows 1-254")
        items: list[SmeAddress | DistributionList] = []
        for _ in range(count):
            flag = r.u8("dest_flag")
            if flag == DestFlag.SME_ADDRESS:
                items.append(
                    _MAKE[SmeAddress](
                        _DEST_TON.read(r, "dest_addr_ton"),
                        _DEST_NPI.read(r, "dest_addr_npi"),
                        _DESTINATION_ADDR.read(r, "destination_addr"),
                    )
                )
            elif flag == DestFlag.DISTRIBUTION_LIST:
                items.append(_MAKE[DistributionList](_DL_NAME.read(r, "dl_name")))
            else:
                raise InvalidDestFlag(f"dest_flag {flag} is neither 1 nor 2")
        return tuple(items)

    def write(self, value: Any) -> bytes:
        out = bytes((len(value),))
        for item in value:
            if type(item) is SmeAddress:
                out += bytes((1, item.dest_addr_ton, item.dest_addr_npi)) + _DESTINATION_ADDR.write(
                    item.destination_addr
                )
            else:
                out += b"\x02" + _DL_NAME.write(item.dl_name)
        return out


@attrs.frozen(kw_only=True)
class SubmitMulti(BaseRequest[SubmitMultiResp], _TlvAccessors):
    """submit_multi (§4.5.1)."""

    command_id = CommandId.SUBMIT_MULTI
    response_class = SubmitMultiResp

    service_type: str = _cstr(_SERVICE_TYPE)
    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR)
    dest_addresses: tuple[SmeAddress | DistributionList, ...] = _field(
        _DestAddresses(), (SmeAddress(),)
    )
    esm_class: int = _u8(_ESM)
    protocol_id: int = _u8()
    priority_flag: int = _u8(_PRIORITY)
    schedule_delivery_time: str = _cstr(_SCHEDULE)
    validity_period: str = _cstr(_VALIDITY)
    registered_delivery: int = _u8(_REG_DELIVERY)
    replace_if_present_flag: int = _u8(_REPLACE_FLAG)
    data_coding: int = _u8()
    sm_default_msg_id: int = _u8(_DEFAULT_MSG_ID)
    short_message: bytes = _field(_SHORT_MESSAGE, b"")
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


@attrs.frozen(kw_only=True)
class AlertNotification(BasePdu, _TlvAccessors):
    """alert_notification (§4.12.1): the SMSC tells an ESME a subscriber is reachable."""

    command_id = CommandId.ALERT_NOTIFICATION

    source_addr_ton: int = _u8(_SOURCE_TON)
    source_addr_npi: int = _u8(_SOURCE_NPI)
    source_addr: str = _cstr(_SOURCE_ADDR_65)
    esme_addr_ton: int = _u8(_DEST_TON)
    esme_addr_npi: int = _u8(_DEST_NPI)
    esme_addr: str = _cstr(_DESTINATION_ADDR_65)
    tlvs: tuple[Tlv, ...] = _field(_TLV_LIST, ())


Pdu: TypeAlias = (
    BindTransmitter
    | BindTransmitterResp
    | BindReceiver
    | BindReceiverResp
    | BindTransceiver
    | BindTransceiverResp
    | Outbind
    | Unbind
    | UnbindResp
    | EnquireLink
    | EnquireLinkResp
    | GenericNack
    | SubmitSm
    | SubmitSmResp
    | DeliverSm
    | DeliverSmResp
    | DataSm
    | DataSmResp
    | QuerySm
    | QuerySmResp
    | CancelSm
    | CancelSmResp
    | ReplaceSm
    | ReplaceSmResp
    | SubmitMulti
    | SubmitMultiResp
    | AlertNotification
)

_PDU_CLASSES: Final[tuple[type[BasePdu], ...]] = (
    BindTransmitter,
    BindTransmitterResp,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    Outbind,
    Unbind,
    UnbindResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    DataSm,
    DataSmResp,
    QuerySm,
    QuerySmResp,
    CancelSm,
    CancelSmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitMulti,
    SubmitMultiResp,
    AlertNotification,
)

#: Every PDU class by command_id.
PDU_CLASSES: Final[dict[int, type[BasePdu]]] = {cls.command_id: cls for cls in _PDU_CLASSES}


# -- generated constructors ------------------------------------------------------------------

#: Builders that take already-validated values positionally, in attrs field order.
_MAKE: Final[dict[type, Callable[..., Any]]] = {}

_CROSS_CHECKS: Final[dict[type, str]] = {
    SubmitSm: "_check_payload_conflict(short_message, tlvs)",
    DeliverSm: "_check_payload_conflict(short_message, tlvs)",
    SubmitMulti: "_check_payload_conflict(short_message, tlvs)",
}


def _kinds(cls: type) -> list[tuple[str, _Kind]]:
    return [(a.name, a.metadata[_KIND]) for a in attrs.fields(cls)]


def _restore(cls: type, values: tuple[Any, ...]) -> Any:
    """Unpickle (and ``copy``) a PDU: the values were checked when it was built."""
    return _MAKE[cls](*values)


def _install_constructors(cls: type) -> None:
    """Give ``cls`` a fast checking ``__new__``, ``with_sequence`` and a decode builder.

    See "Construction" in the module docstring. The builder is a mutable twin with the
    same slots on the same bases; CPython allows assigning ``__class__`` between such
    layout-identical classes, which turns the built twin into a frozen instance. (It
    refuses when a class adds both named slots and ``__weakref__``, hence
    ``weakref_slot=False`` on the root classes SmeAddress, DistributionList, UnsuccessSme.)
    """
    fields = attrs.fields(cls)
    names = [a.name for a in fields]
    twin = type(
        f"_{cls.__name__}Builder",
        cls.__bases__,
        {
            "__slots__": cls.__dict__.get("__slots__", ()),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )
    ns: dict[str, Any] = {
        "_new": object.__new__,
        "_twin": twin,
        "_cls": cls,
        "_check_payload_conflict": _check_payload_conflict,
        "_FieldError": InvalidFieldValue,
        "_restore": _restore,
    }
    params = []
    checks = []
    slow = []
    for i, a in enumerate(fields):
        kind = a.metadata[_KIND]
        ns[f"_k{i}"] = kind
        if a.default is attrs.NOTHING:
            params.append(a.name)
        else:
            ns[f"_d{i}"] = a.default
            params.append(f"{a.name}=_d{i}")
        checks.append(
            f"        if not ({kind.fast_ok(a.name, f'_k{i}', ns)}):\n"
            f"            {a.name} = _k{i}.check({a.name!r}, {a.name})"
        )
        slow.append(f"        {a.name} = _k{i}.check({a.name!r}, {a.name})")
    stores = "".join(f"    o.{n} = {n}\n" for n in names)
    cross = _CROSS_CHECKS.get(cls)
    source = (
        f"def __new__(cls, *, {', '.join(params)}):\n"
        f"    if cls is not _cls:\n"
        f"        raise TypeError('PDU classes are final')\n"
        f"    try:\n" + "\n".join(checks) + "\n"
        "    except TypeError:\n"  # an unhashable or unorderable value: find which one
        + "\n".join(slow)
        + "\n        raise\n"
        + (f"    {cross}\n" if cross else "")
        + "    o = _new(_twin)\n"
        + stores
        + "    o.__class__ = _cls\n    return o\n\n"
        f"def _make({', '.join(names)}):\n"
        "    o = _new(_twin)\n" + stores + "    o.__class__ = _cls\n    return o\n\n"
        "def with_sequence(self, sequence):\n"
        "    if sequence.__class__ is not int or not 0 <= sequence <= 0xFFFFFFFF:\n"
        "        raise _FieldError(f'sequence {sequence!r} does not fit 32 bits')\n"
        "    o = _new(_twin)\n"
        "    o.sequence = sequence\n"
        + "".join(f"    o.{n} = self.{n}\n" for n in names if n != "sequence")
        + "    o.__class__ = _cls\n    return o\n\n"
        "def __reduce__(self):\n"
        f"    return (_restore, (_cls, ({''.join(f'self.{n}, ' for n in names)})))\n"
    )
    exec(compile(source, f"<ussdsim.pdu {cls.__name__} constructors>", "exec"), ns)
    type.__setattr__(cls, "__new__", staticmethod(ns["__new__"]))
    # object.__init__ ignores the keyword arguments once __new__ is overridden; attrs'
    # __init__ would set every field again, through the slow frozen path.
    type.__setattr__(cls, "__init__", object.__init__)
    type.__setattr__(cls, "__reduce__", ns["__reduce__"])
    if issubclass(cls, BasePdu):
        type.__setattr__(cls, "with_sequence", ns["with_sequence"])
    ns["_make"].__qualname__ = f"{cls.__name__}._make"
    _MAKE[cls] = ns["_make"]


for _cls in (*_PDU_CLASSES, SmeAddress, DistributionList, UnsuccessSme):
    _install_constructors(_cls)
del _cls


# -- encoding --------------------------------------------------------------------------------

_HEADER: Final = struct.Struct(">IIII")
_HEADER_PACK: Final = _HEADER.pack
_HEADER_UNPACK: Final = _HEADER.unpack_from
_LENGTH_UNPACK: Final = struct.Struct(">I").unpack_from


def _generic_encoder(cls: type[BasePdu]) -> Callable[[Any], bytes]:
    kinds = _kinds(cls)[2:]
    defaults = tuple(a.default for a in attrs.fields(cls)[2:])
    command_id = int(cls.command_id)
    empty_on_error = cls.empty_body_on_error

    def encode_pdu(pdu: Any) -> bytes:
        values = tuple(getattr(pdu, name) for name, _ in kinds)
        if empty_on_error and pdu.status and values == defaults:
            body = b""
        else:
            body = b"".join(
                [kind.write(value) for (_, kind), value in zip(kinds, values, strict=True)]
            )
        return _HEADER_PACK(16 + len(body), command_id, pdu.status, pdu.sequence) + body

    return encode_pdu


def _header_only_encoder(cls: type[BasePdu]) -> Callable[[Any], bytes]:
    command_id = int(cls.command_id)

    def encode_pdu(pdu: Any) -> bytes:
        return _HEADER_PACK(16, command_id, pdu.status, pdu.sequence)

    return encode_pdu


def _message_id_resp_encoder(cls: type[BasePdu]) -> Callable[[Any], bytes]:
    command_id = int(cls.command_id)

    def encode_pdu(pdu: Any) -> bytes:
        message_id: str = pdu.message_id
        status: int = pdu.status
        if status and not message_id:
            return _HEADER_PACK(16, command_id, status, pdu.sequence)
        body = message_id.encode("latin-1")
        return _HEADER_PACK(17 + len(body), command_id, status, pdu.sequence) + body + b"\0"

    return encode_pdu


def _short_message_encoder(cls: type[BasePdu]) -> Callable[[Any], bytes]:
    command_id = int(cls.command_id)
    _chr = chr

    def encode_pdu(p: Any) -> bytes:
        sm = p.short_message
        head = (
            f"{p.service_type}\0{_chr(p.source_addr_ton)}{_chr(p.source_addr_npi)}"
            f"{p.source_addr}\0{_chr(p.dest_addr_ton)}{_chr(p.dest_addr_npi)}"
            f"{p.destination_addr}\0{_chr(p.esm_class)}{_chr(p.protocol_id)}"
            f"{_chr(p.priority_flag)}{p.schedule_delivery_time}\0{p.validity_period}\0"
            f"{_chr(p.registered_delivery)}{_chr(p.replace_if_present_flag)}"
            f"{_chr(p.data_coding)}{_chr(p.sm_default_msg_id)}{_chr(len(sm))}"
        ).encode("latin-1")
        tlvs = p.tlvs
        if tlvs:
            tail = _encode_tlv_section(tlvs)
            return b"".join(
                (
                    _HEADER_PACK(
                        16 + len(head) + len(sm) + len(tail), command_id, p.status, p.sequence
                    ),
                    head,
                    sm,
                    tail,
                )
            )
        return b"".join(
            (_HEADER_PACK(16 + len(head) + len(sm), command_id, p.status, p.sequence), head, sm)
        )

    return encode_pdu


_SHORT_MESSAGE_FIELDS: Final = (
    "sequence",
    "status",
    "service_type",
    "source_addr_ton",
    "source_addr_npi",
    "source_addr",
    "dest_addr_ton",
    "dest_addr_npi",
    "destination_addr",
    "esm_class",
    "protocol_id",
    "priority_flag",
    "schedule_delivery_time",
    "validity_period",
    "registered_delivery",
    "replace_if_present_flag",
    "data_coding",
    "sm_default_msg_id",
    "short_message",
    "tlvs",
)


def _encoder_for(cls: type[BasePdu]) -> Callable[[Any], bytes]:
    names = tuple(a.name for a in attrs.fields(cls))
    if names == ("sequence", "status"):
        return _header_only_encoder(cls)
    if names == ("sequence", "status", "message_id"):
        return _message_id_resp_encoder(cls)
    if names == _SHORT_MESSAGE_FIELDS:
        return _short_message_encoder(cls)
    return _generic_encoder(cls)


_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    cls: _encoder_for(cls) for cls in _PDU_CLASSES
}
#: The generic (kind-driven) encoders, also for classes with a fast path: tests compare.
_GENERIC_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    cls: _generic_encoder(cls) for cls in _PDU_CLASSES
}


def encode(pdu: Pdu) -> bytes:
    """The wire form of one PDU, header included.

    PDUs are checked when built, so this only fails (with :class:`InvalidFieldValue`) for
    an integer field given a non-integer that compared equal to an allowed value.
    """
    try:
        return _ENCODERS[pdu.__class__](pdu)
    except KeyError:
        raise InvalidFieldValue(f"{type(pdu).__name__} is not a PDU") from None
    except (TypeError, ValueError, OverflowError, struct.error) as exc:
        raise InvalidFieldValue(
            f"cannot encode {type(pdu).__name__}: {exc}",
            command_id=getattr(pdu, "command_id", None),
            sequence=getattr(pdu, "sequence", None),
        ) from None


# -- decoding --------------------------------------------------------------------------------

_Decoder: TypeAlias = Callable[[bytes, int, int], Any]


def _generic_decoder(cls: type[BasePdu]) -> _Decoder:
    kinds = _kinds(cls)[2:]
    make = _MAKE[cls]
    defaults = tuple(a.default for a in attrs.fields(cls)[2:])
    empty_on_error = cls.empty_body_on_error
    has_payload_rule = cls in _CROSS_CHECKS

    def decode_body(data: bytes, status: int, sequence: int) -> Any:
        if empty_on_error and status and len(data) == 16:
            return make(sequence, status, *defaults)
        r = _Reader(data)
        values = [kind.read(r, name) for name, kind in kinds]
        if r.pos != r.end:
            raise InvalidCommandLength(
                f"{r.end - r.pos} octet(s) after the last field of {cls.__name__}"
            )
        pdu = make(sequence, status, *values)
        if has_payload_rule:
            _check_payload_conflict(pdu.short_message, pdu.tlvs)
        return pdu

    return decode_body


def _header_only_decoder(cls: type[BasePdu]) -> _Decoder:
    make = _MAKE[cls]
    name = cls.__name__

    def decode_body(data: bytes, status: int, sequence: int) -> Any:
        if len(data) != 16:
            raise InvalidCommandLength(f"{name} has no body; {len(data) - 16} octet(s) given")
        return make(sequence, status)

    return decode_body


def _message_id_resp_decoder(cls: type[BasePdu]) -> _Decoder:
    make = _MAKE[cls]
    slow = _generic_decoder(cls)

    def decode_body(data: bytes, status: int, sequence: int) -> Any:
        n = len(data)
        if 16 < n <= 81 and data.find(b"\0", 16) == n - 1:
            return make(sequence, status, data[16 : n - 1].decode("latin-1"))
        return slow(data, status, sequence)

    return decode_body


def _short_message_decoder(cls: type[BasePdu]) -> _Decoder:
    """submit_sm / deliver_sm fast path (see "Fields are the wire layout").

    One regular expression, generated from the field kinds, checks every fixed field
    (string sizes and terminators, the allowed TON/NPI/esm_class/... octets, sm_length
    up to 254) and captures the five strings. Their lengths then fix the offsets of the
    twelve 1-octet fields, which one cached ``struct`` layout reads at once (at most
    6 x 21 x 21 x 2 x 2 layouts exist). Anything the expression rejects goes to the
    generic decoder, which raises the precise error.
    """
    make = _MAKE[cls]
    slow = _generic_decoder(cls)
    kinds = [kind for _, kind in _kinds(cls)[2:-2]]  # the fixed fields, up to sm_length
    pattern = "".join(
        kind.pattern() if isinstance(kind, _CString) else cast(_U8, kind).pattern()[1:-1]
        for kind in kinds
    )
    match = re.compile(pattern + "[\\x00-\\xfe]", re.DOTALL).match
    layouts: dict[tuple[int, int, int, int, int], Callable[[bytes], tuple[int, ...]]] = {}

    def layout(key: tuple[int, int, int, int, int]) -> Callable[[bytes], tuple[int, ...]]:
        st, src, dst, sched, valid = key
        unpack = struct.Struct(
            f">{17 + st}xBB{src + 1}xBB{dst + 1}xBBB{sched + 1}x{valid + 1}xBBBBB"
        ).unpack_from
        layouts[key] = unpack
        return unpack

    def decode_body(data: bytes, status: int, sequence: int) -> Any:
        m = match(data.decode("latin-1"), 16)
        if m is None:
            return slow(data, status, sequence)
        service_type, source_addr, destination_addr, schedule, validity = m.groups()
        key = (
            len(service_type),
            len(source_addr),
            len(destination_addr),
            len(schedule),
            len(validity),
        )
        unpack = layouts.get(key) or layout(key)
        (s_ton, s_npi, d_ton, d_npi, esm, pid, prio, reg, rip, coding, dflt, sm_length) = unpack(
            data
        )
        start = m.end()
        stop = start + sm_length
        end = len(data)
        if stop == end:
            tlvs: tuple[Tlv, ...] = ()
        elif stop < end:
            tlvs, payload = _read_tlv_section(data, stop, end)
            if payload and stop != start:
                _check_payload_conflict(b"?", tlvs)  # raises the error
        else:
            return slow(data, status, sequence)
        return make(
            sequence,
            status,
            service_type,
            s_ton,
            s_npi,
            source_addr,
            d_ton,
            d_npi,
            destination_addr,
            esm,
            pid,
            prio,
            schedule,
            validity,
            reg,
            rip,
            coding,
            dflt,
            data[start:stop],
            tlvs,
        )

    return decode_body


def _decoder_for(cls: type[BasePdu]) -> _Decoder:
    names = tuple(a.name for a in attrs.fields(cls))
    if names == ("sequence", "status"):
        return _header_only_decoder(cls)
    if names == ("sequence", "status", "message_id"):
        return _message_id_resp_decoder(cls)
    if names == _SHORT_MESSAGE_FIELDS:
        return _short_message_decoder(cls)
    return _generic_decoder(cls)


_DECODERS: Final[dict[int, _Decoder]] = {
    int(cls.command_id): _decoder_for(cls) for cls in _PDU_CLASSES
}
_GENERIC_DECODERS: Final[dict[int, _Decoder]] = {
    int(cls.command_id): _generic_decoder(cls) for cls in _PDU_CLASSES
}


def decode(data: bytes) -> Pdu:
    """The PDU in ``data``, which must be exactly one whole PDU, command_length included.

    Raises a :class:`PduError` subclass (with command_id and sequence filled in when the
    header was readable) and nothing else, whatever the octets.
    """
    if data.__class__ is not bytes:
        data = bytes(data)
    n = len(data)
    if n < 16:
        raise InvalidCommandLength(f"{n} octet(s) cannot hold the 16-octet header")
    length, command_id, status, sequence = _HEADER_UNPACK(data)
    if length != n:
        raise InvalidCommandLength(
            f"command_length {length} but {n} octets given",
            command_id=command_id,
            sequence=sequence,
        )
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise InvalidCommandId(
            f"command_id 0x{command_id:08x} is not SMPP 3.4",
            command_id=command_id,
            sequence=sequence,
        )
    try:
        return cast(Pdu, decoder(data, status, sequence))
    except PduError as exc:
        exc.command_id = command_id
        exc.sequence = sequence
        raise


def _decode_generic(data: bytes) -> Pdu:
    """:func:`decode` without the fast paths; for tests that compare the two."""
    _, command_id, status, sequence = _HEADER_UNPACK(data)
    return cast(Pdu, _GENERIC_DECODERS[command_id](data, status, sequence))


# -- framing (GW-03) ---------------------------------------------------------------------------


class PduStream:
    """Sans-IO framing: feed octets from the peer, get whole PDUs (SPEC GW-03).

    ``feed`` returns, in order, every PDU completed by the new octets; a PDU whose body
    does not decode comes out as its :class:`PduError` (command_id and sequence filled in)
    and the stream goes on. A command_length under 16 or over ``max_command_length``
    yields a fatal :class:`FramingError` as the last item; the stream then drops its
    buffer and returns nothing more. At most one PDU (``max_command_length`` octets) is
    ever buffered, and ``feed`` never raises.
    """

    __slots__ = ("_buffer", "_closed", "_max")

    def __init__(self, max_command_length: int = 65536) -> None:
        if max_command_length < 16:
            raise ValueError("max_command_length must be at least 16 (the header)")
        self._max = max_command_length
        self._buffer = bytearray()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once a framing error has ended the stream."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Octets received that do not yet make a whole PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Pdu | PduError]:
        """Take the next octets of the stream; return what they complete."""
        if self._closed or not data:
            return []
        buffer = self._buffer
        if not buffer and data.__class__ is bytes and len(data) >= 16:
            # The common case on a quiet link: one chunk is exactly one PDU.
            (length,) = _LENGTH_UNPACK(data)
            if length == len(data) and length <= self._max:
                try:
                    return [decode(data)]
                except PduError as exc:
                    return [exc]
        if buffer:
            buffer += data
            source: bytes | bytearray = buffer
        else:
            source = data  # the usual case: parse the chunk in place, copy only a remainder
        out: list[Pdu | PduError] = []
        pos = 0
        end = len(source)
        limit = self._max
        while end - pos >= 4:
            (length,) = _LENGTH_UNPACK(source, pos)
            if length < 16 or length > limit:
                out.append(self._framing_error(source, pos, end, length))
                return out
            stop = pos + length
            if stop > end:
                break
            if pos == 0 and stop == end and source.__class__ is bytes:
                chunk = source  # one whole PDU in one chunk: no copy at all
            else:
                chunk = bytes(source[pos:stop])
            pos = stop
            try:
                out.append(decode(chunk))
            except PduError as exc:
                out.append(exc)
        if source is buffer:
            del buffer[:pos]
        elif pos < end:
            buffer += source[pos:]
        return out

    def _framing_error(
        self, source: bytes | bytearray, pos: int, end: int, length: int
    ) -> FramingError:
        self._closed = True
        self._buffer = bytearray()
        available = end - pos
        command_id = int.from_bytes(source[pos + 4 : pos + 8], "big") if available >= 8 else None
        sequence = int.from_bytes(source[pos + 12 : pos + 16], "big") if available >= 16 else None
        bound = "under the 16-octet header" if length < 16 else f"over the maximum {self._max}"
        return FramingError(
            f"command_length {length} is {bound}", command_id=command_id, sequence=sequence
        )
