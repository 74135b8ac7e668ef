"""notifications.webhook and notifications.email against local receivers:
an HTTP server on loopback that checks the body and the HMAC signature
and can answer 500 to make the task retry, and a hand-written SMTP sink."""

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import socketserver
import threading

import pytest

from conftest import free_port

SECRET = "s3cr3t-partagé"


class Receiver:
    """HTTP server on 127.0.0.1 that records each POST and answers with
    the next status of `statuses` (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append((self.path, dict(self.headers),
                                           body))
                    code = outer.statuses.pop(0) if outer.statuses else 200
                reply = json.dumps({"ok": code < 300}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        r = Receiver(statuses)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body,
                                hashlib.sha256).hexdigest()


def notif_config(**task_opts):
    opts = {"max_retries": 3, "retry_backoff": "100ms"}
    opts.update(task_opts)
    return {
        "queues": {"notifications": {"concurrency": 1}},
        "tasks": {
            "notifications.webhook": dict(
                run="builtin:notifications.webhook", queue="notifications",
                **opts),
            "notifications.email": dict(
                run="builtin:notifications.email", queue="notifications",
                **opts),
        },
    }


def webhook(app, url, payload, timeout=20, **kwargs):
    return app.send_task("notifications.webhook", args=[url, payload],
                         kwargs=kwargs, queue="notifications")


PAYLOAD = {"event": "report.ready", "job_id": 42,
           "client": "Dubois Hélène", "amounts": [12.5, 1000]}


def test_webhook_body_and_signature(celeriacd, receiver):
    rcv = receiver()
    d = celeriacd(config=notif_config())
    res = webhook(d.app, rcv.url + "/hooks/reports", PAYLOAD, secret=SECRET)
    out = res.get(timeout=20)
    assert out["status_code"] == 200 and out["signed"] is True
    assert json.loads(out["response"]) == {"ok": True}
    assert len(rcv.requests) == 1
    path, headers, body = rcv.requests[0]
    assert path == "/hooks/reports"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == PAYLOAD
    assert headers["X-Celeriac-Signature"] == signature(SECRET, body)
    assert headers["X-Celeriac-Delivery"] == res.id


def test_webhook_secret_from_environment(celeriacd, receiver):
    rcv = receiver()
    d = celeriacd(config=notif_config(),
                  env={"CELERIAC_WEBHOOK_SECRET": "from-env"})
    out = webhook(d.app, rcv.url, [1, "deux"]).get(timeout=20)
    assert out["signed"] is True
    _, headers, body = rcv.requests[0]
    assert json.loads(body) == [1, "deux"]
    assert headers["X-Celeriac-Signature"] == signature("from-env", body)


def test_webhook_unsigned_without_secret(celeriacd, receiver):
    rcv = receiver()
    d = celeriacd(config=notif_config())
    assert webhook(d.app, rcv.url, PAYLOAD).get(timeout=20)["signed"] is False
    assert "X-Celeriac-Signature" not in rcv.requests[0][1]


def test_webhook_500_is_retried(celeriacd, receiver):
    rcv = receiver([500])
    d = celeriacd(config=notif_config())
    res = webhook(d.app, rcv.url, PAYLOAD, secret=SECRET)
    out = res.get(timeout=20)
    assert res.status == "SUCCESS"
    assert out["status_code"] == 200
    assert len(rcv.requests) == 2
    # The same delivery, body and signature both times.
    assert rcv.requests[0][2] == rcv.requests[1][2]
    assert (rcv.requests[0][1]["X-Celeriac-Delivery"]
            == rcv.requests[1][1]["X-Celeriac-Delivery"] == res.id)
    d.wait_log(r"retry 1 of 3 .*WebhookError")


def test_webhook_4xx_fails_without_retry(celeriacd, receiver):
    rcv = receiver([404])
    d = celeriacd(config=notif_config())
    with pytest.raises(Exception) as e:
        webhook(d.app, rcv.url, PAYLOAD).get(timeout=20)
    assert type(e.value).__name__ == "WebhookError"
    assert "HTTP 404" in str(e.value)
    assert len(rcv.requests) == 1


def test_webhook_network_error_retried_then_fails(celeriacd):
    d = celeriacd(config=notif_config(max_retries=2))
    url = "http://127.0.0.1:%d/nobody" % free_port()
    with pytest.raises(ConnectionError):
        webhook(d.app, url, PAYLOAD).get(timeout=30)
    d.wait_log(r"retry 2 of 2 ")


def test_webhook_refuses_other_schemes(celeriacd):
    d = celeriacd(config=notif_config())
    with pytest.raises(ValueError):
        webhook(d.app, "file:///etc/passwd", PAYLOAD).get(timeout=20)


# ------------------------------------------------------------------ e-mail

class SMTPSink:
    """Just enough SMTP to receive a message: records (from, rcpts, data).
    reject_rcpt answers RCPT with that code."""

    def __init__(self, reject_rcpt=None):
        self.messages = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 sink ESMTP")
                sender, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode().strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender = cmd.split(":", 1)[1].strip()
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        if reject_rcpt:
                            self.reply("%d no such user" % reject_rcpt)
                        else:
                            rcpts.append(cmd.split(":", 1)[1].strip())
                            self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = b""
                        while True:
                            part = self.rfile.readline()
                            if part in (b".\r\n", b""):
                                break
                            if part.startswith(b".."):
                                part = part[1:]
                            data += part
                        outer.messages.append((sender, rcpts, data))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.url = "smtp://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    made = []

    def make(**kw):
        s = SMTPSink(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def send_email(app, *args, **kwargs):
    return app.send_task("notifications.email", args=list(args),
                         kwargs=kwargs, queue="notifications")


def test_email_delivered(celeriacd, sink):
    smtp = sink()
    d = celeriacd(config=notif_config(), env={
        "CELERIAC_SMTP_URL": smtp.url,
        "CELERIAC_SMTP_FROM": "rapports@monassurance.example"})
    subject = "Votre rapport est prêt — sinistres 2024 (détail complet)"
    body = "Bonjour Hélène,\n\nLe rapport n°42 est prêt.\n.\nÀ bientôt\n"
    out = send_email(d.app, ["a@example.com", "b@example.org"], subject,
                     body).get(timeout=20)
    assert out["to"] == ["a@example.com", "b@example.org"]
    assert len(smtp.messages) == 1
    sender, rcpts, data = smtp.messages[0]
    assert sender == "<rapports@monassurance.example>"
    assert rcpts == ["<a@example.com>", "<b@example.org>"]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == subject
    assert msg["From"] == "rapports@monassurance.example"
    assert "a@example.com" in msg["To"] and "b@example.org" in msg["To"]
    assert msg.get_content() == body
    assert msg["Message-ID"].strip("<>") == out["message_id"]


def test_email_permanent_rejection_fails(celeriacd, sink):
    smtp = sink(reject_rcpt=550)
    d = celeriacd(config=notif_config(), env={"CELERIAC_SMTP_URL": smtp.url})
    with pytest.raises(Exception) as e:
        send_email(d.app, "x@example.com", "s", "b").get(timeout=20)
    assert type(e.value).__name__ == "SMTPError"
    assert "550" in str(e.value)
    assert smtp.messages == []


def test_email_needs_a_server_and_valid_addresses(celeriacd, sink):
    d = celeriacd(config=notif_config())
    with pytest.raises(Exception) as e:
        send_email(d.app, "x@example.com", "s", "b").get(timeout=20)
    assert type(e.value).__name__ == "ImproperlyConfigured"
    d.stop()  # both would consume the same queue
    smtp = sink()
    d2 = celeriacd(config=notif_config(), env={"CELERIAC_SMTP_URL": smtp.url},
                   name="celeriacd-smtp")
    with pytest.raises(ValueError):
        send_email(d2.app, "x@example.com\r\nBcc: y@example.com", "s",
                   "b").get(timeout=20)
    with pytest.raises(ValueError):
        send_email(d2.app, "x@example.com", "line\r\nBcc: y@example.com",
                   "b").get(timeout=20)
    assert smtp.messages == []
