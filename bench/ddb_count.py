"""DynamoDB requests per API call: a counting proxy between the local runner
and the emulator, by operation (X-Amz-Target).

Usage: python bench/ddb_count.py DYNAMODB_URL PROXY_PORT RUNNER_BINARY API_PORT
(S3, SQS and SES: AWS_ENDPOINT_URL, not behind the proxy.)
Prints JSON: requests per upsert of a new and of an existing contact.
"""
import base64
import collections
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = collections.Counter()
# Items the emulator handed back (Query/Scan Count, BatchGetItem responses, GetItem hits).
items_read = collections.Counter()
lock = threading.Lock()


def items_in(op, data):
    try:
        body = json.loads(data)
    except ValueError:
        return 0
    if op in ("Query", "Scan"):
        return body.get("Count", 0)
    if op == "BatchGetItem":
        return sum(len(v) for v in body.get("Responses", {}).values())
    if op == "GetItem":
        return 1 if "Item" in body else 0
    return 0


def make_proxy(upstream):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            target = self.headers.get("X-Amz-Target", "")
            if target.startswith("DynamoDB_"):
                with lock:
                    counts[target.split(".")[-1]] += 1
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            req = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
            try:
                resp = urllib.request.urlopen(req)
                status, data, rh = resp.status, resp.read(), resp.headers
            except urllib.error.HTTPError as e:
                status, data, rh = e.code, e.read(), e.headers
            if target.startswith("DynamoDB_") and status == 200:
                n = items_in(target.split(".")[-1], data)
                with lock:
                    items_read["items"] += n
            self.send_response(status)
            for k, v in rh.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(k, v)
            # A HEAD reply has no body but the length of what a GET would return.
            length = rh.get("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length)
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a runner killed between two steps, mid-poll

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

        def log_message(self, *args):
            pass

    return Proxy


def call(method, url, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status, json.loads(r.read())


def public(base, pid, pk, path, body, ip):
    data = json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/v1/public/{pid}/{path}", data=data, method="POST",
                                 headers={"X-Publishable-Key": pk, "Content-Type": "application/json", "X-Forwarded-For": ip})
    with urllib.request.urlopen(req) as r:
        return r.status, json.loads(r.read())


def twilio_post(url, token, params):
    """A webhook as Twilio sends it: form-encoded, signed (URL + sorted name/value pairs, HMAC-SHA1)."""
    signed = url + "".join(k + v for k, v in sorted(params.items()))
    signature = base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req) as r:
        return r.status, r.read()


def measure(label, n, fn):
    with lock:
        counts.clear()
    for i in range(n):
        fn(i)
    with lock:
        snapshot = dict(counts)
    total = sum(snapshot.values())
    return {"call": label, "requests_per_call": round(total / n, 2), "by_operation": {k: round(v / n, 2) for k, v in sorted(snapshot.items())}}


def sms_rows(base, pid, key, n):
    """SMS through the runner's Twilio stand-in: a one-off send, inbound messages, keywords, status callbacks."""
    sid, token, ours = "AC" + "0" * 32, "f" * 32, "+14155550100"
    call("PATCH", f"{base}/v1/projects/{pid}", key, {"twilio_account_sid": sid, "twilio_auth_token": token})
    _, lst = call("POST", f"{base}/v1/projects/{pid}/lists", key, {"name": "Texts", "channel": "sms", "sender": ours})
    contacts = f"{base}/v1/projects/{pid}/contacts"
    members = {}
    for i in range(n):
        _, c = call("POST", contacts, key, {"phone": f"+1628555{i:04d}"})
        members[i] = c["id"]
        call("PUT", f"{base}/v1/projects/{pid}/lists/{lst['id']}/contacts/{c['id']}", key, {"status": "active"})
    sent = {}

    def one_off(i):
        _, m = call("POST", f"{contacts}/{members[i]}/messages", key, {"channel": "sms", "body": "Your order shipped.", "list_id": lst["id"]})
        sent[i] = m

    inbound = f"{base}/v1/webhooks/twilio/{pid}/sms"
    status = f"{base}/v1/webhooks/twilio/{pid}/status"

    def message(i, frm, body, tag):
        sms_sid = f"SM{tag}{i:030d}"
        return twilio_post(inbound, token, {"MessageSid": sms_sid, "SmsSid": sms_sid, "AccountSid": sid, "From": frm, "To": ours, "Body": body, "NumSegments": "1"})

    return [
        measure("SMS one-off send (Twilio stand-in)", n, one_off),
        measure("SMS status callback (delivered)", n, lambda i: twilio_post(status, token, {"MessageSid": sent[i]["provider_id"], "MessageStatus": "delivered", "AccountSid": sid})),
        measure("inbound SMS, new number (contact made, subscribed)", n, lambda i: message(i, f"+1628556{i:04d}", "hello", "01")),
        measure("inbound SMS, known number", n, lambda i: message(i, f"+1628555{i:04d}", "where is my order?", "02")),
        measure("inbound SMS, Twilio retry (same MessageSid)", n, lambda i: message(i, f"+1628555{i:04d}", "where is my order?", "02")),
        measure("inbound SMS, STOP (opt-out, consent record, reply)", n, lambda i: message(i, f"+1628555{i:04d}", "STOP", "03")),
    ]


def main():
    dynamodb, proxy_port, runner, api_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port), make_proxy(dynamodb))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{proxy_port}", PORT=api_port, TWILIO_STUB_PORT="0", STACK_NAME=f"bench{int(time.time())}", RUST_LOG="warn", ADMIN_TOKEN="bench-admin-token")
    proc = subprocess.Popen([runner], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{api_port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/health")
                break
            except OSError:
                time.sleep(0.2)
        _, project = call("POST", base + "/v1/projects", "bench-admin-token", {"name": "bench", "public_rate_per_ip": 100000, "public_rate_per_project": 100000})
        pid, key, pk = project["id"], project["api_key"], project["publishable_key"]
        contacts = f"{base}/v1/projects/{pid}/contacts"
        n = 50
        rows = [
            measure("upsert, new contact (email)", n, lambda i: call("POST", contacts, key, {"email": f"new{i}@example.com", "name": "New Person"})),
            measure("upsert, existing contact (email)", n, lambda i: call("POST", contacts, key, {"email": f"new{i}@example.com", "company": "Acme"})),
            measure("upsert, new contact (email + phone)", n, lambda i: call("POST", contacts, key, {"email": f"both{i}@example.com", "phone": f"+1415555{i:04d}"})),
            measure("upsert, existing contact (email + same phone)", n, lambda i: call("POST", contacts, key, {"email": f"both{i}@example.com", "phone": f"+1415555{i:04d}"})),
            measure("lookup by email", n, lambda i: call("GET", f"{contacts}?email=new{i}%40example.com", key)),
            measure("list first page (limit 50)", 10, lambda i: call("GET", f"{contacts}?limit=50", key)),
        ]
        codes = {}

        def signup(i):
            _, r = public(base, pid, pk, "waitlist", {"email": f"wait{i}@example.com", "name": "Wait Listed"}, f"10.0.0.{i % 250}")
            codes[i] = r["referral_code"]

        rows += [
            measure("public waitlist signup, new contact", n, signup),
            measure("public waitlist signup, existing contact", n, lambda i: public(base, pid, pk, "waitlist", {"email": f"wait{i}@example.com"}, "10.1.0.1")),
            measure("public waitlist signup with a valid ref code", n, lambda i: public(base, pid, pk, "waitlist", {"email": f"friend{i}@example.com", "ref": codes[i]}, "10.2.0.1")),
            measure("public form submission, new contact", n, lambda i: public(base, pid, pk, "forms/demo", {"email": f"form{i}@example.com", "company": "Acme", "size": 10}, "10.3.0.1")),
            measure("public contact message, existing contact", n, lambda i: public(base, pid, pk, "messages", {"email": f"form{i}@example.com", "message": "hello"}, "10.4.0.1")),
        ]
        conversations = {}

        def chat_start(i):
            _, r = public(base, pid, pk, "chat", {"email": f"form{i}@example.com", "message": "hi"}, "10.5.0.1")
            conversations[i] = r["id"]

        ids = {}
        for i in range(n):
            _, r = call("GET", f"{contacts}?email=form{i}%40example.com", key)
            ids[i] = r["data"][0]["id"]
        rows += [
            measure("public chat, new conversation", n, chat_start),
            measure("public chat, message appended", n, lambda i: public(base, pid, pk, "chat", {"conversation_id": conversations[i], "message": "more"}, "10.6.0.1")),
            measure("contact profile (records, timeline, referrals)", n, lambda i: call("GET", f"{contacts}/{ids[i]}/profile", key)),
        ]
        rows += sms_rows(base, pid, key, n)
        print(json.dumps(rows))
    finally:
        proc.kill()
        proxy.shutdown()


if __name__ == "__main__":
    main()
