"""Model providers for ``Conversation``: the ``Provider`` protocol, a deterministic ``EchoProvider``
(the offline default) and ``OpenAICompatibleProvider`` (chat completions over HTTP, stdlib only)."""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol, Sequence, runtime_checkable

from .errors import SessionsGitError
from .metadata import Message
from .codec import loads
from .messages import message_text, one_line, plain_text, role_of

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class ProviderError(SessionsGitError):
    """A provider call failed: server unreachable, HTTP error status, timeout, unreadable reply."""


@runtime_checkable
class Provider(Protocol):
    """What ``Conversation`` needs from a model: ``complete`` takes the transcript so far and
    returns ``(assistant_message, usage)``. The message is ``{"role": "assistant", "content":
    [{"type": "text", "text": ...}]}`` (an optional ``"stop_reason"`` key is reported in
    ``message_complete``); ``usage`` is a dict of token counts, possibly empty. ``name`` and
    ``model`` are recorded in session metadata."""

    name: str
    model: str

    def complete(self, messages: Sequence[Message]) -> tuple[Message, dict[str, Any]]:
        ...


def text_message(role: str, text: str) -> Message:
    """A message in the shape sessionsgit uses: one text block."""
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _token_estimate(text: str) -> int:
    return (len(text) + 3) // 4  # about four characters per token


class EchoProvider:
    """Replies ``"Echo: <last user text>"`` with token-ish usage from text lengths: deterministic
    and offline, the default for demos and tests."""

    name = "echo"

    def __init__(self, model: str = "echo-1") -> None:
        self.model = model

    def complete(self, messages: Sequence[Message]) -> tuple[Message, dict[str, Any]]:
        last_user = next((message_text(m) for m in reversed(messages)
                          if role_of(m) == "user"), "")
        reply = f"Echo: {last_user}"
        usage = {"input_tokens": sum(_token_estimate(message_text(m)) for m in messages),
                 "output_tokens": _token_estimate(reply)}
        return text_message("assistant", reply), usage

    def __repr__(self) -> str:
        return f"EchoProvider(model={self.model!r})"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would re-send the Authorization header to wherever they point."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class OpenAICompatibleProvider:
    """Chat completions over HTTP (``POST {base_url}/chat/completions``) for OpenAI and compatible
    servers (vLLM, Ollama, llama.cpp...). Arguments fall back to ``OPENAI_BASE_URL``,
    ``OPENAI_MODEL`` and ``OPENAI_API_KEY``; failures raise ``ProviderError``, which never shows
    the key."""

    def __init__(self, model: str | None = None, *, base_url: str | None = None,
                 api_key: str | None = None, timeout: float = 60.0, name: str = "openai") -> None:
        self.name = name
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or DEFAULT_OPENAI_BASE_URL).rstrip("/")
        if urllib.parse.urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ProviderError(f"base URL must start with http:// or https://: {self.base_url!r}")
        resolved_model = model or os.environ.get("OPENAI_MODEL")
        if not resolved_model:
            raise ProviderError("no model given: pass model= or set OPENAI_MODEL")
        self.model = resolved_model
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or ""
        self.timeout = timeout

    @property
    def url(self) -> str:
        """The chat completions endpoint."""
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(model={self.model!r}, base_url={self.base_url!r})"

    def complete(self, messages: Sequence[Message]) -> tuple[Message, dict[str, Any]]:
        body = {"model": self.model,
                "messages": [_chat_message(m) for m in messages]}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"),
                                         headers=headers, method="POST")
        opener = urllib.request.build_opener(_NoRedirects())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            raise self._error(f"{self.url} answered HTTP {exc.code}"
                              + (f": {detail}" if detail else "")) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._error(f"{self.url} timed out after {self.timeout:g}s") from None
            raise self._error(f"cannot reach {self.url}: {exc.reason}") from None
        except TimeoutError:
            raise self._error(f"{self.url} timed out after {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._error(f"request to {self.url} failed: {exc!r}") from None
        return self._parse(raw)

    def _parse(self, raw: bytes) -> tuple[Message, dict[str, Any]]:
        try:
            data = loads(raw, what="reply")
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._error(f"{self.url} sent a reply that is not a chat completion: "
                              f"{raw[:65536].decode('utf-8', 'replace')}") from None
        message = text_message("assistant", content)
        if isinstance(choice.get("finish_reason"), str):
            message["stop_reason"] = choice["finish_reason"]
        raw_usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        usage = {ours: raw_usage[theirs]
                 for ours, theirs in (("input_tokens", "prompt_tokens"),
                                      ("output_tokens", "completion_tokens"))
                 if isinstance(raw_usage.get(theirs), int)}
        return message, usage

    def _error(self, message: str) -> ProviderError:
        """A short one-line ProviderError with the API key blanked out (before any truncation
        could leave part of it), whatever the server echoed."""
        if self._api_key:
            message = message.replace(self._api_key, "***")
        return ProviderError(one_line(message, 300))


def _chat_message(message: Message) -> dict[str, str]:
    """A stored message of any shape as a plain chat completions message: its role (``tool``
    sent as ``user``, since it carries no call id) and its text, else the whole of it as text."""
    role = role_of(message)
    return {"role": role if role in ("system", "assistant") else "user",
            "content": message_text(message) or plain_text(message)}


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's error message: OpenAI's ``{"error": {"message": ...}}`` or the raw body
    (the first 64 KiB; the caller blanks the key out and shortens it)."""
    try:
        raw = exc.read(65536).decode("utf-8", "replace")
    except Exception:
        return ""
    finally:
        exc.close()
    try:
        error = loads(raw, what="error").get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    return raw
