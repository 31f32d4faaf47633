import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sessionsgit.conversation import Conversation
from sessionsgit.errors import SessionsGitError
from sessionsgit.providers import (
    EchoProvider,
    OpenAICompatibleProvider,
    Provider,
    ProviderError,
    message_text,
)

KEY = "sk-test-SECRET-0123456789abcdef"


def completion(text="Hi from the server", finish="stop", usage=True):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "tiny",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}]}
    if usage:
        body["usage"] = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    return body


class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 speaking enough of the chat completions API."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.reply: object = completion()
        self.delay = 0.0
        self.redirect_to: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": json.loads(raw) if raw else None})
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.redirect_to and self.path != "/elsewhere":
                    self.send_response(307)
                    self.send_header("Location", fake.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = fake.reply
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the timeout test's client hangs up before the reply is written

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    fake = FakeOpenAI()
    yield fake
    fake.stop()


def user(text):
    return {"role": "user", "content": [{"type": "text", "text": text}], "id": "u", "timestamp": 1}


# ---- helpers and EchoProvider --------------------------------------------------------------
def test_message_text_handles_strings_blocks_and_junk():
    assert message_text({"content": "plain"}) == "plain"
    assert message_text({"content": [{"type": "text", "text": "a"}, {"type": "image"},
                                     {"type": "text", "text": "b"}]}) == "a\nb"
    assert message_text({"content": None}) == ""
    assert message_text({}) == ""


def test_echo_provider_is_deterministic_with_token_counts():
    provider = EchoProvider()
    assert isinstance(provider, Provider)
    assert (provider.name, provider.model) == ("echo", "echo-1")
    messages = [user("first"), {"role": "assistant", "content": "Echo: first"}, user("abcdefgh")]
    reply, usage = provider.complete(messages)
    assert reply == {"role": "assistant", "content": [{"type": "text", "text": "Echo: abcdefgh"}]}
    assert usage == {"input_tokens": 2 + 3 + 2, "output_tokens": 4}
    assert provider.complete(messages) == (reply, usage)
    assert provider.complete([])[0]["content"][0]["text"] == "Echo: "


# ---- OpenAICompatibleProvider ---------------------------------------------------------------
def test_request_body_headers_and_parsed_reply(server):
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url + "/", api_key=KEY)
    assert isinstance(provider, Provider) and provider.name == "openai"
    messages = [{"role": "system", "content": "be brief"}, user("hello"),
                {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}, user("again")]
    reply, usage = provider.complete(messages)
    assert reply == {"role": "assistant", "stop_reason": "stop",
                     "content": [{"type": "text", "text": "Hi from the server"}]}
    assert usage == {"input_tokens": 11, "output_tokens": 5}
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"model": "tiny", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "yo"}, {"role": "user", "content": "again"}]}


def test_settings_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = OpenAICompatibleProvider()
    assert provider.model == "env-model"
    provider.complete([user("x")])
    assert server.requests[0]["body"]["model"] == "env-model"
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(provider)


def test_no_key_sends_no_authorization_and_missing_usage_is_empty(server):
    server.reply = completion(usage=False, finish=None)
    reply, usage = OpenAICompatibleProvider("tiny", base_url=server.base_url).complete([user("x")])
    assert "Authorization" not in server.requests[0]["headers"]
    assert usage == {} and "stop_reason" not in reply


@pytest.mark.parametrize("status", [401, 500])
def test_http_errors_raise_provider_error_without_the_key(server, status):
    server.status = status
    server.reply = {"error": {"message": f"Incorrect API key provided: {KEY}\n(see docs)",
                              "type": "invalid_request_error"}}
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url, api_key=KEY)
    with pytest.raises(ProviderError) as info:
        provider.complete([user("x")])
    message = str(info.value)
    assert isinstance(info.value, SessionsGitError)
    assert f"HTTP {status}" in message and "Incorrect API key provided: *** (see docs)" in message
    assert KEY not in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_long_error_bodies_are_shortened_after_the_key_is_blanked(server):
    server.status = 500
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url, api_key=KEY)
    pad = 297 - len(f"{provider.url} answered HTTP 500: ") - 10  # the key straddles the cut
    server.reply = b"x" * pad + KEY.encode() + b"y" * 5000
    with pytest.raises(ProviderError) as info:
        provider.complete([user("x")])
    message = str(info.value)
    assert len(message) <= 300 and message.endswith("…")
    assert "sk-test" not in message and "SECRET" not in message


def test_a_reply_that_is_not_a_completion_raises_provider_error(server):
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url, api_key=KEY)
    bad_content = {"choices": [{"message": {"content": 3}}]}
    for reply in (b"<html>oops</html>", {"choices": []}, bad_content):
        server.reply = reply
        with pytest.raises(ProviderError, match="not a chat completion"):
            provider.complete([user("x")])


def test_redirects_are_refused_so_the_key_never_travels(server):
    server.redirect_to = server.base_url.replace("/v1", "") + "/elsewhere"
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url, api_key=KEY)
    with pytest.raises(ProviderError, match="HTTP 307"):
        provider.complete([user("x")])
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"]


def test_timeout_raises_provider_error(server):
    server.delay = 1.0
    provider = OpenAICompatibleProvider("tiny", base_url=server.base_url, timeout=0.2)
    with pytest.raises(ProviderError, match="timed out after 0.2s"):
        provider.complete([user("x")])


def test_unreachable_server_raises_provider_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens
    provider = OpenAICompatibleProvider("tiny", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY)
    with pytest.raises(ProviderError, match="cannot reach") as info:
        provider.complete([user("x")])
    assert KEY not in str(info.value)


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ProviderError, match="no model"):
        OpenAICompatibleProvider(base_url="http://127.0.0.1:1")
    with pytest.raises(ProviderError, match="http"):
        OpenAICompatibleProvider("m", base_url="file:///etc/passwd")


def test_conversation_over_the_http_provider(server):
    conversation = Conversation(OpenAICompatibleProvider("tiny", base_url=server.base_url))
    completed = []
    conversation.on("message_complete", completed.append)
    reply = conversation.prompt("hello")
    assert reply["content"][0]["text"] == "Hi from the server"
    assert completed[0]["stop_reason"] == "stop"
    assert completed[0]["usage"] == {"input_tokens": 11, "output_tokens": 5}
    server.status = 500
    with pytest.raises(ProviderError):
        conversation.prompt("again")
    assert len(conversation.messages) == 2
