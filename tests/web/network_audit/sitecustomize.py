"""Loaded by the `lareid serve` subprocess of the web tests (on its PYTHONPATH only): logs every network address
the server connects to or looks up, so a test can check that it sends nothing anywhere."""

import os
import sys

_LOG = os.environ.get("HF_LAREID_NETWORK_LOG")


def _log_network(event, args):
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else str(address)
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    text = host.decode() if isinstance(host, bytes) else str(host)
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{event} {text}\n")


if _LOG:
    sys.addaudithook(_log_network)
