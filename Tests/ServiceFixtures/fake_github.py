#!/usr/bin/env python3
"""A stand-in for the GitHub REST API on 127.0.0.1, for runner-agent's tests.

Serves the GHES layout (/api/v3/...): registration tokens (PAT or App installation token),
App installation tokens (the App JWT's RS256 signature is verified against the public key
given in the config), installation lookup, runner groups and generate-jitconfig. It counts
every call, can declare every registration deleted (what the fake runner asks before it
"listens"), and serves release downloads from a directory under /downloads/.

Usage: fake_github.py STATE_DIR. STATE_DIR/config.json holds:
  {"pats": [...], "app_id": "123", "installation_id": 77, "public_key": {"n": HEX, "e": HEX},
   "downloads": DIR, "jit_unsupported": false (true: generate-jitconfig answers 404, like an old GHES)}
The server writes the port it listens on to STATE_DIR/port.
Test controls: POST /_fake/delete-registrations, GET /_fake/stats,
GET /_fake/session?name=NAME (200, or 410 when the registration was deleted),
POST /_fake/register (Authorization: Bearer REGISTRATION_TOKEN) -> 200/401.
"""
import base64
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

STATE_DIR = sys.argv[1]
with open(os.path.join(STATE_DIR, "config.json")) as f:
    CONFIG = json.load(f)

LOCK = threading.Lock()
STATS = {}
ISSUED_INSTALLATION_TOKENS = set()
ISSUED_REGISTRATION_TOKENS = set(CONFIG.get("registration_tokens", []))
REGISTERED = {}  # runner name -> registration generation
DELETED = {"all": False}
SERIAL = [0]

# DER prefix of a SHA-256 DigestInfo (PKCS #1 v1.5 signatures).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(token):
    """Returns None when the App JWT is valid, else the reason."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        payload = json.loads(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except Exception as error:  # noqa: BLE001 - any malformation is a rejection
        return "malformed JWT: %s" % error
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    n = int(CONFIG["public_key"]["n"], 16)
    e = int(CONFIG["public_key"]["e"], 16)
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return "signature has the wrong length"
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest = hashlib.sha256((header_b64 + "." + payload_b64).encode()).digest()
    t = SHA256_PREFIX + digest
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    if em != expected:
        return "bad signature"
    now = int(time.time())
    if str(payload.get("iss")) != str(CONFIG["app_id"]):
        return "wrong issuer"
    if not (payload.get("iat", now + 999) <= now + 5 and payload.get("exp", 0) > now):
        return "expired or not yet valid"
    if payload["exp"] - payload["iat"] > 600:
        return "lifetime over 10 minutes"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def bearer(self):
        value = self.headers.get("Authorization", "")
        return value[7:] if value.startswith("Bearer ") else None

    def count(self, key):
        with LOCK:
            STATS[key] = STATS.get(key, 0) + 1

    def body_json(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def api_user_ok(self):
        token = self.bearer()
        return token in CONFIG.get("pats", []) or token in ISSUED_INSTALLATION_TOKENS

    def do_GET(self):
        url = urlparse(self.path)
        path = url.path
        if path == "/_fake/stats":
            with LOCK:
                return self.reply(200, dict(STATS))
        if path == "/_fake/session":
            name = parse_qs(url.query).get("name", [""])[0]
            self.count("session")
            with LOCK:
                gone = DELETED["all"] or name not in REGISTERED
            return self.reply(410 if gone else 200, {"name": name})
        if path.startswith("/downloads/"):
            self.count("download")
            file = os.path.join(CONFIG.get("downloads", STATE_DIR), os.path.basename(path))
            if not os.path.isfile(file):
                return self.reply(404, {"message": "Not Found"})
            with open(file, "rb") as f:
                return self.reply(200, raw=f.read(), content_type="application/octet-stream")
        if not path.startswith("/api/v3/"):
            return self.reply(404, {"message": "Not Found"})
        path = path[len("/api/v3/"):]
        if path.endswith("/installation"):
            self.count("installation")
            reason = verify_jwt(self.bearer() or "")
            if reason:
                return self.reply(401, {"message": "A JSON web token could not be decoded: " + reason})
            return self.reply(200, {"id": CONFIG["installation_id"]})
        if path.endswith("/actions/runner-groups"):
            self.count("runner-groups")
            if not self.api_user_ok():
                return self.reply(401, {"message": "Bad credentials"})
            return self.reply(200, {"total_count": 2, "runner_groups": [
                {"id": 1, "name": "Default"}, {"id": 42, "name": "appliances"}]})
        return self.reply(404, {"message": "Not Found"})

    def do_POST(self):
        url = urlparse(self.path)
        path = url.path
        if path == "/_fake/delete-registrations":
            with LOCK:
                DELETED["all"] = True
            return self.reply(200, {})
        if path == "/_fake/register":
            self.count("register")
            body = self.body_json() or {}
            token = self.bearer()
            with LOCK:
                if token not in ISSUED_REGISTRATION_TOKENS:
                    return self.reply(401, {"message": "invalid registration token"})
                DELETED["all"] = False
                REGISTERED[body.get("name", "")] = True
            return self.reply(200, {})
        if path == "/_fake/register-jit":
            self.count("register-jit")
            body = self.body_json() or {}
            with LOCK:
                DELETED["all"] = False
                REGISTERED[body.get("name", "")] = True
            return self.reply(200, {})
        if not path.startswith("/api/v3/"):
            return self.reply(404, {"message": "Not Found"})
        path = path[len("/api/v3/"):]
        if path.startswith("app/installations/") and path.endswith("/access_tokens"):
            self.count("access_tokens")
            reason = verify_jwt(self.bearer() or "")
            if reason:
                return self.reply(401, {"message": "A JSON web token could not be decoded: " + reason})
            installation = path.split("/")[2]
            if installation != str(CONFIG["installation_id"]):
                return self.reply(404, {"message": "Not Found"})
            with LOCK:
                SERIAL[0] += 1
                token = "ghs_fakeinstallation%06d" % SERIAL[0]
                ISSUED_INSTALLATION_TOKENS.add(token)
            return self.reply(201, {"token": token, "expires_at": "2099-01-01T00:00:00Z"})
        if path.endswith("/actions/runners/registration-token"):
            self.count("registration-token")
            if not self.api_user_ok():
                return self.reply(401, {"message": "Bad credentials"})
            with LOCK:
                SERIAL[0] += 1
                token = "AFAKEREGTOKEN%06d" % SERIAL[0]
                ISSUED_REGISTRATION_TOKENS.add(token)
            return self.reply(201, {"token": token, "expires_at": "2099-01-01T00:00:00Z"})
        if path.endswith("/actions/runners/generate-jitconfig"):
            self.count("generate-jitconfig")
            if CONFIG.get("jit_unsupported"):
                return self.reply(404, {"message": "Not Found"})
            if not self.api_user_ok():
                return self.reply(401, {"message": "Bad credentials"})
            body = self.body_json()
            if not body or not body.get("name") or "runner_group_id" not in body or not body.get("labels"):
                return self.reply(422, {"message": "Invalid request: name, runner_group_id and labels are required"})
            with LOCK:
                SERIAL[0] += 1
                serial = SERIAL[0]
            files = {
                ".runner": base64.b64encode(json.dumps(
                    {"agentName": body["name"], "agentId": serial, "ephemeral": True,
                     "runnerGroupId": body["runner_group_id"], "labels": body["labels"]}).encode()).decode(),
                ".credentials": base64.b64encode(b'{"scheme":"OAuth"}').decode(),
                ".credentials_rsaparams": base64.b64encode(b"{}").decode(),
            }
            encoded = base64.b64encode(json.dumps(files).encode()).decode()
            return self.reply(201, {"runner": {"id": serial, "name": body["name"]},
                                    "encoded_jit_config": encoded})
        return self.reply(404, {"message": "Not Found"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file = os.path.join(STATE_DIR, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
