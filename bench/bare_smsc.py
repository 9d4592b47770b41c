"""The ceiling: a trivial Twisted SMSC that frames PDUs and answers them, nothing else.

It reads only the header, answers any bind with a bind resp, submit_sm with a
submit_sm_resp carrying a counter as message_id, enquire_link and unbind.  No codec, no
store, no routing: what plain Twisted costs on this machine, measured in the same run
as the gateway (``bench/gateway.py``).

    python bench/bare_smsc.py PORT
"""

from __future__ import annotations

import struct
import sys

from twisted.internet import protocol, reactor

HEADER = struct.Struct(">IIII")


class Bare(protocol.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.counter = 0

    def dataReceived(self, data: bytes) -> None:
        buffer = self.buffer + data
        offset, end = 0, len(buffer)
        out = []
        while end - offset >= 16:
            length, command_id, _status, sequence = HEADER.unpack_from(buffer, offset)
            if end - offset < length:
                break
            if command_id in (1, 2, 9):
                out.append(HEADER.pack(24, command_id | 0x80000000, 0, sequence) + b"bare\0\0\0\0")
            elif command_id == 4:
                self.counter += 1
                mid = b"%x\0" % self.counter
                out.append(HEADER.pack(16 + len(mid), 0x80000004, 0, sequence) + mid)
            elif command_id in (6, 0x15):
                out.append(HEADER.pack(16, command_id | 0x80000000, 0, sequence))
            offset += length
        self.buffer = buffer[offset:]
        if out:
            self.transport.write(b"".join(out))


class Factory(protocol.Factory):
    protocol = Bare


if __name__ == "__main__":
    port = reactor.listenTCP(int(sys.argv[1]), Factory(), interface="127.0.0.1")
    print(f"bare SMSC on {port.getHost().port}", flush=True)
    reactor.run()
