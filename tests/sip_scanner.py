"""Run a SIPVicious tool (Debian's ``sipvicious``) from a chosen source address.

``/usr/bin/python3 tests/sip_scanner.py 127.0.0.2 svwar -p 5060 …``: sipvicious 0.3.3
ignores its own ``--bindingip`` and sends from the wildcard address, which on one machine
is the trunk's 127.0.0.1; this binds its socket to the scanner's address instead.
"""

import importlib
import socket
import sys

SOURCE = sys.argv[1]
_bind = socket.socket.bind


def _bind_to_source(self: socket.socket, address: tuple) -> None:
    host = SOURCE if address[0] in ("", "0.0.0.0") else address[0]
    _bind(self, (host, *address[1:]))


socket.socket.bind = _bind_to_source  # type: ignore[method-assign]
sys.path.insert(0, "/usr/share/sipvicious")
tool = sys.argv[2]
sys.argv = [tool, *sys.argv[3:]]
sys.exit(importlib.import_module(f"sipvicious.{tool}").main())
