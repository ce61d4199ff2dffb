"""Runs commands on a WinRM host with pywinrm, the independent client of the interoperability tests.

Reads a JSON request on stdin:
  {"endpoint": ..., "transport": "basic"|"ntlm", "message_encryption": "auto"|"always"|"never",
   "user": ..., "password": ..., "commands": [{"command": ..., "stdin": <base64 or null>}]}
and prints a JSON list of {"stdout": b64, "stderr": b64, "code": int}, one per command, all run in
one shell. pywinrm 0.3.0 (Debian's python3-winrm) has no stdin call, so Send is built here the way
later pywinrm versions do it.
"""
import base64
import json
import sys

import xmltodict
from winrm.protocol import Protocol

SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"


def send_input(p, shell_id, command_id, data, end):
    msg = {"env:Envelope": p._get_soap_header(resource_uri=SHELL_CMD, action=SEND, shell_id=shell_id)}
    stream = msg["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Send", {}).setdefault("rsp:Stream", {})
    stream["@Name"] = "stdin"
    stream["@CommandId"] = command_id
    stream["#text"] = base64.b64encode(data).decode("ascii")
    if end:
        stream["@End"] = "true"
    p.send_message(xmltodict.unparse(msg))


def main():
    req = json.load(sys.stdin)
    p = Protocol(
        req["endpoint"],
        transport=req["transport"],
        username=req["user"],
        password=req["password"],
        message_encryption=req.get("message_encryption", "auto"),
        server_cert_validation="ignore",
        operation_timeout_sec=20,
        read_timeout_sec=30,
    )
    shell_id = p.open_shell()
    out = []
    try:
        for c in req["commands"]:
            stdin = c.get("stdin")
            command_id = p.run_command(shell_id, c["command"], console_mode_stdin=stdin is None)
            if stdin is not None:
                data = base64.b64decode(stdin)
                chunk = 32 * 1024
                for i in range(0, len(data), chunk):
                    send_input(p, shell_id, command_id, data[i:i + chunk], False)
                send_input(p, shell_id, command_id, b"", True)
            stdout, stderr, code = p.get_command_output(shell_id, command_id)
            p.cleanup_command(shell_id, command_id)
            out.append({"stdout": base64.b64encode(stdout).decode(), "stderr": base64.b64encode(stderr).decode(), "code": code})
    finally:
        p.close_shell(shell_id)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
