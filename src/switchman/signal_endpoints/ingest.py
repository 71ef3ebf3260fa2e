"""`POST /api/signal-endpoint/{name}`: the lean ingestion path (raw ASGI, orjson, no DI).

Calls reach `serve_call` only through `IngestFastPath`, a middleware ahead of FastAPI's router; the
OpenAPI document describes the call from `openapi_paths` (its response from `SignalsSchema`).

Order of checks (Q-9): rate limit → endpoint (unknown or disabled: 404) → token (missing or not one of
that endpoint's: 401) → body (over `SWITCHMAN_SIGNAL_MAX_BYTES`: 413; not a JSON object: 400). The body
is read — up to the cap, never further — before the endpoint and token are checked, because those
checks run inside the group-committed transaction that stores the signal (see `signal_writer.py`);
errors are still reported in the order above.

The body is parsed as JSON whatever its `Content-Type` (webhook senders are careless about it), except
that an `application/x-www-form-urlencoded` body that does not start with `{` or `[` is read as a form
(ADR 0018): an object of its fields, a repeated field a list of its values, a `payload` field holding JSON
(Slack-style) decoded. A JSON array is stored as `{"items": [...]}` (one signal per delivery). An empty
body is the payload `{}`. The stored payload is the parsed object re-serialised compactly: nothing from
the headers is ever added to it, and neither headers nor bodies are logged. The reply, 200
`{"signals":[<signalSchema>]}`, is sent only after the signal's transaction committed.

A delivery id in `Idempotency-Key`, `webhook-id` (Standard Webhooks) or `X-GitHub-Delivery` (first found,
in that order) makes the call idempotent per endpoint for `SWITCHMAN_SIGNAL_DELIVERY_WINDOW_SECONDS`: a
repeat stores nothing and gets the first call's reply again, with `Idempotent-Replayed: true` (ADR 0019).
Without such a header, the delivery id the endpoint's sender format names is used (PagerDuty's `event.id`,
Datadog's `id`, SNS's `MessageId`, Sentry's `Request-ID` header).

Endpoint rules (`endpoint_rules.py`, read at most once a second per name): a signed endpoint's calls are
verified on the raw body as soon as it is read, before the write (401 on failure, nothing stored, counted;
a verified call needs no token; ADR 0020); an endpoint that splits alert groups stores one signal per
alert, reading bodies up to `SWITCHMAN_SIGNAL_MAX_GROUP_BYTES` (ADR 0021).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from switchman import metrics
from switchman.auth.tokens import hash_secret
from switchman.engine.formats import (
    DELIVERY_ID_HEADERS,
    Format,
    delivery_id,
    has_body_delivery_id,
    split_group,
)
from switchman.errors import (
    BadDataError,
    ContentTooLargeError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    SwitchmanError,
    UnauthorizedError,
)
from switchman.openapi import model_components, model_ref
from switchman.runtime import runtime_of_scope
from switchman.signal_endpoints.endpoint_rules import EndpointRules
from switchman.signal_endpoints.schemas import ENDPOINT_NAME_PATTERN, NAME_MAX, SignalsSchema
from switchman.signal_endpoints.signal_writer import IngestCall, StoredSignal
from switchman.signal_endpoints.signals import signal_json
from switchman.signal_endpoints.sns import Checked, MessageType
from switchman.signal_endpoints.verification import Scheme
from switchman.timeutil import utcnow

PATH = "/api/signal-endpoint/{name}"
_CALL_PREFIX = "/api/signal-endpoint/"
_UTF8_BOM = b"\xef\xbb\xbf"
# orjson writes at most this many nested levels (it parses up to 1024): a stored payload must be writable
# again everywhere it is served (listings, event snapshots), so deeper payloads are refused at the door.
MAX_JSON_DEPTH = 254
TOO_DEEP_MESSAGE = (
    f"The request body is JSON nested deeper than {MAX_JSON_DEPTH} levels, more than switchman stores."
)

_NAME = re.compile(ENDPOINT_NAME_PATTERN.removeprefix("^").removesuffix("$"))  # used with fullmatch
# The integers orjson keeps exact (int64 and uint64); others become the nearest double, as in JavaScript.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class IngestFastPath:
    """ASGI middleware handing `POST /api/signal-endpoint/{name}` straight to `serve_call`.

    It sits inside the request log (calls are still logged) but outside FastAPI's exception
    middleware, exit stack and router, which together cost about as much per call as the handler
    itself (measured in-process: ~45 µs of ~85 µs). Everything else — including paths the route would
    not match, such as a trailing slash — goes on down the normal stack.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(_CALL_PREFIX):
                name = path[len(_CALL_PREFIX) :]
                if name and "/" not in name:
                    scope[metrics.ROUTE_TEMPLATE] = PATH
                    if scope["method"] == "POST":
                        await serve_call(scope, name, receive, send)
                    else:  # the call path exists for POST only
                        error = MethodNotAllowedError(
                            f"The method {scope['method']} is not allowed on {scope['path']}."
                        )
                        error.headers["Allow"] = "POST"
                        await _refuse(send, error, name, exists=None)
                    return
        await self.app(scope, receive, send)


async def serve_call(scope: Scope, name: str, receive: Receive, send: Send) -> None:
    """Answer one call of endpoint `name` (see the module docstring for the rules)."""
    ctx = runtime_of_scope(scope)
    ingestion = ctx.require_ingestion()
    limiter = ingestion.rate_limiter
    if limiter is not None:
        decision = await limiter.take(name)
        if not decision.allowed:
            await _refuse(
                send,
                RateLimitError(
                    f"Too many calls to this signal endpoint; retry in {decision.retry_after} s.",
                    headers=decision.headers(),
                ),
                name,
                exists=None,
            )
            return
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        # No endpoint can have this name; answering here keeps it out of the group-committed batch,
        # where a value PostgreSQL cannot bind (a NUL character) would fail every call in the batch.
        await _refuse(
            send, NotFoundError(f"Could not find a signal endpoint named '{name}'."), name, exists=False
        )
        return
    rules = await ingestion.endpoint_rules.of(name)
    signed = rules is not None and rules.signed
    authorization: bytes | None = None
    content_length: bytes | None = None
    form = False
    delivery_ids: dict[bytes, bytes] = {}
    delivery_format = rules.delivery_format if rules is not None else None
    format_header = DELIVERY_ID_HEADERS.get(delivery_format) if delivery_format is not None else None
    headers: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if signed:
            headers.setdefault(key, value)
        if key == b"authorization":
            authorization = value
        elif key == b"content-length":
            content_length = value
        elif key == b"content-type":
            form = value.split(b";", 1)[0].strip().lower() == _FORM_TYPE
        elif key in _DELIVERY_ID_HEADERS or key == format_header:
            delivery_ids.setdefault(key, value)
    secret = _credential(authorization) if authorization else ""
    if not secret and rules is not None and rules.query_token:
        secret = _query_token(scope.get("query_string", b""))
    split = rules is not None and rules.split_alerts
    cap = ctx.settings.signal_max_group_bytes if split else ctx.settings.signal_max_bytes
    try:
        raw, body_error = await _read_body(receive, content_length, cap)
    except _Disconnected:  # nobody is listening; nothing was stored
        metrics.signal_received(name, metrics.DISCONNECTED, exists=True if rules is not None else None)
        return
    verified = False
    if rules is not None and rules.signed and raw is not None:
        verifier = rules.verifier
        if verifier is not None and verifier.scheme == Scheme.SNS:
            checked = await ingestion.endpoint_rules.sns.check(raw)
            reason = checked.failure
            if reason is None and checked.message_type != MessageType.NOTIFICATION:
                answered = await _answer_sns_subscription(send, ingestion.endpoint_rules, checked)
                metrics.signal_received(name, answered, exists=True)
                return
        else:
            reason = rules.unusable or (verifier.failure(raw, headers, now=time.time()) if verifier else None)
        if reason is not None:
            ingestion.endpoint_rules.failed(rules.endpoint_id, reason)
            error = UnauthorizedError(f"The call's signature does not verify: {reason}")
            await _refuse(send, error, name, exists=True)
            return
        verified = True
    payload: bytes | None = None
    if raw is not None:
        payload, body_error = parse_payload(raw, form=form)
    delivery_key: str | None = None
    if ctx.settings.signal_delivery_window_seconds:
        if delivery_ids:
            delivery_key, key_error = _delivery_key(delivery_ids, format_header)
            if key_error is not None and body_error is None:
                payload, body_error = None, key_error  # the writers store a call only with a payload
        if delivery_key is None and delivery_format is not None and payload is not None:
            delivery_key = _format_delivery_key(delivery_format, payload)
    parts: list[tuple[bytes | None, str | None]] = [(payload, delivery_key)]
    if split and payload is not None:
        parts, body_error = _split_alerts(payload, delivery_key, ctx.settings.signal_max_bytes)
        if body_error is not None:
            parts = [(None, None)]
    received_at = utcnow()
    token_hash = hash_secret(secret) if secret else None
    calls = [
        IngestCall(
            name=name,
            token_hash=token_hash,
            payload=part,
            body_error=body_error,
            received_at=received_at,
            delivery_key=key,
            verified=verified,
        )
        for part, key in parts
    ]
    committer = ingestion.committer
    try:
        if len(calls) == 1:
            outcomes = [await committer.submit(calls[0])]
        else:  # submitted together, they are normally written in one group-committed batch
            outcomes = list(await asyncio.gather(*(committer.submit(call) for call in calls)))
    except SwitchmanError as exc:
        await _refuse(send, exc, name, exists=None)
        return
    refused = next((outcome for outcome in outcomes if not isinstance(outcome, StoredSignal)), None)
    if refused is not None:
        # The writer checks the endpoint first: any refusal but 404 was made by an existing endpoint.
        await _refuse(send, refused, name, exists=refused.status_code != NotFoundError.status_code)
        return
    stored = [outcome for outcome in outcomes if isinstance(outcome, StoredSignal)]
    body = (
        b'{"signals":['
        + b",".join(
            signal_json(
                signal_id=outcome.signal_id,
                source_id=outcome.source_id,
                token_id=outcome.token_id,
                created_at=outcome.created_at,
                payload=outcome.payload,
            )
            for outcome in stored
        )
        + b"]}"
    )
    replayed = all(outcome.replayed for outcome in stored)
    metrics.signal_received(name, metrics.DUPLICATE if replayed else metrics.ACCEPTED, exists=True)
    await _send(send, 200, body, _REPLAYED if replayed else None)


def _query_token(query_string: bytes) -> str:
    """The `token` query parameter (endpoints that accept it only); "" when absent."""
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "token":
            return value.strip()
    return ""


def _split_alerts(
    payload: bytes, delivery_key: str | None, cap: int
) -> tuple[list[tuple[bytes | None, str | None]], SwitchmanError | None]:
    """One payload and delivery key per alert of a group (ADR 0021), or why the group cannot be split
    (an alert's payload over the per-signal cap). A repeated delivery key stays per alert (`<key>#<n>`), so
    a retry after a partial failure stores only what is missing."""
    parts: list[tuple[bytes | None, str | None]] = []
    for index, part in enumerate(split_group(orjson.loads(payload))):
        encoded = orjson.dumps(part)
        if len(encoded) > cap:
            return [], _too_large(cap)
        parts.append((encoded, _part_key(delivery_key, index) if delivery_key is not None else None))
    return parts, None


def _part_key(key: str, index: int) -> str:
    suffix = f"#{index}"
    if len(key) + len(suffix) > _DELIVERY_KEY_MAX:
        key = hashlib.sha256(key.encode()).hexdigest()
    return key + suffix


async def _answer_sns_subscription(send: Send, rules: EndpointRules, checked: Checked) -> str:
    """A verified SNS subscription message is not a signal: a subscription is confirmed (so that SNS starts
    delivering), an unsubscription acknowledged; nothing is stored. Returns the call's metrics outcome."""
    if checked.message_type == MessageType.SUBSCRIPTION_CONFIRMATION:
        problem = await rules.sns.confirm(checked.subscribe_url)
        if problem is not None:  # SNS retries the confirmation message
            error = ServiceUnavailableError(f"The SNS subscription is not confirmed: {problem}")
            await _send_error(send, error)
            return metrics.refusal_outcome(error)
    await _send(send, 200, b'{"signals":[]}')
    return metrics.SUBSCRIPTION


def _credential(header: bytes) -> str:
    """The secret in an Authorization value: bare, after a `Bearer` scheme (any case), or the password of
    `Basic` credentials (the user name when the password is empty, as in `https://<token>@host/…`), for
    senders that can only put credentials in the URL; "" when absent.

    Bearer and bare: the same result as `auth.tokens.strip_bearer`, without a regular expression on the
    hot path; a bare scheme (`Bearer` or `Basic` and nothing else) is no credential. Basic credentials
    that are not base64 of UTF-8 text are passed on as they are, to fail as an unknown token (401).
    """
    text = header.decode("latin-1").strip()
    if text[:6].lower() == "bearer" and (len(text) == 6 or text[6].isspace()):
        return text[6:].strip()
    if text[:5].lower() == "basic" and (len(text) == 5 or text[5].isspace()):
        encoded = text[5:].strip()
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return encoded
        return password or user
    return text


# Headers that carry a sender's delivery id, by precedence; the first present one is the key.
_DELIVERY_ID_HEADERS = (b"idempotency-key", b"webhook-id", b"x-github-delivery")
_DELIVERY_KEY_MAX = 255
_DELIVERY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_REPLAYED = {"Idempotent-Replayed": "true"}


def _delivery_key(
    found: dict[bytes, bytes], format_header: bytes | None
) -> tuple[str | None, SwitchmanError | None]:
    """The delivery key from the first present delivery-id header (the sender format's own header last),
    or the reason it cannot be one."""
    header = next((name for name in _DELIVERY_ID_HEADERS if name in found), format_header)
    if header is None or header not in found:
        return None, None
    text = found[header].decode("latin-1").strip()
    if not text:  # an empty template variable on the sender's side: no delivery id
        return None, None
    if len(text) > _DELIVERY_KEY_MAX or not _DELIVERY_KEY.fullmatch(text):
        label = header.decode()
        return None, BadDataError(
            f"The {label} header must be 1 to {_DELIVERY_KEY_MAX} printable ASCII characters.",
            details=[{"path": f"headers/{label}", "message": "not a usable delivery id"}],
        )
    # The header names one key space: an Idempotency-Key and a webhook-id with equal text are one delivery.
    return text, None


def _format_delivery_key(fmt: Format, payload: bytes) -> str | None:
    """The delivery id the sender format reads from the payload; one that is not a usable key as it is
    (too long, not printable ASCII) is used by its SHA-256."""
    if not has_body_delivery_id(fmt):
        return None
    found = delivery_id(fmt, orjson.loads(payload))
    if found is None:
        return None
    if len(found) > _DELIVERY_KEY_MAX or not _DELIVERY_KEY.fullmatch(found):
        return hashlib.sha256(found.encode()).hexdigest()
    return found


class _Disconnected(Exception):
    pass


async def _read_body(
    receive: Receive, content_length: bytes | None, cap: int
) -> tuple[bytes | None, SwitchmanError | None]:
    """The raw body, or why it cannot be read (not a number in Content-Length, over `cap` bytes). Reads
    at most `cap` bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            return None, BadDataError("The Content-Length header is not a number.")
        if declared > cap:
            return None, _too_large(cap)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > cap:
                return None, _too_large(cap)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), None


def parse_payload(body: bytes, *, form: bool = False) -> tuple[bytes | None, SwitchmanError | None]:
    """Parse a call body into compact JSON object bytes; empty → `{}`; a JSON array → `{"items": [...]}`;
    a form (`form`, and the body does not start with `{` or `[`) → its fields; anything else → error.

    Numbers are read as JavaScript (and so Unleash) reads them, except that 64-bit integers stay exact:
    larger integers become the nearest double, numbers out of double range become infinity, stored as
    `null` (what `JSON.stringify` writes for it).
    """
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    stripped = body.strip()
    if not stripped:
        return b"{}", None
    if form and stripped[:1] not in (b"{", b"["):
        return _form_payload(stripped)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            return None, BadDataError(
                TOO_DEEP_MESSAGE,
                details=[{"path": "/", "message": f"nested deeper than {MAX_JSON_DEPTH} levels"}],
            )
        value = _parse_like_javascript(body)
        if value is _MALFORMED:
            return None, BadDataError(
                "The request body is not valid JSON.",
                details=[{"path": "/", "message": "The request body is not valid JSON"}],
            )
    if isinstance(value, list):
        value = {"items": value}
    if not isinstance(value, dict):
        return None, BadDataError(
            "The signal payload must be a JSON object.",
            details=[{"path": "/", "message": f"must be an object, not {_json_kind(value)}"}],
        )
    try:
        return orjson.dumps(value), None
    except orjson.JSONEncodeError as exc:
        if str(exc) == "Recursion limit reached":
            return None, _too_deep()
        return None, BadDataError("The request body is not valid JSON (unpaired surrogate).")


_FORM_TYPE = b"application/x-www-form-urlencoded"
# The form field that Slack-style senders fill with a JSON document; it is stored decoded.
_FORM_JSON_FIELD = "payload"


def _form_payload(body: bytes) -> tuple[bytes | None, SwitchmanError | None]:
    """A form body as an object: each field's value, a repeated field's values as a list in order."""
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None, BadDataError(
            "The form body is not UTF-8 text.",
            details=[{"path": "/", "message": "The form body is not UTF-8 text"}],
        )
    value: dict[str, Any] = {}
    for name, text in fields:
        if name in value:
            previous = value[name]
            value[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            value[name] = text
    embedded = value.get(_FORM_JSON_FIELD)
    if isinstance(embedded, str) and embedded.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(orjson.JSONDecodeError):  # not JSON after all: kept as the text it is
            value[_FORM_JSON_FIELD] = orjson.loads(embedded)
    try:
        return orjson.dumps(value), None
    except orjson.JSONEncodeError:
        return None, _too_deep()


def _too_deep() -> BadDataError:
    return BadDataError(
        TOO_DEEP_MESSAGE, details=[{"path": "/", "message": f"nested deeper than {MAX_JSON_DEPTH} levels"}]
    )


_MALFORMED: Any = object()


def _parse_like_javascript(body: bytes) -> Any:
    """Fallback for what orjson refuses but JSON allows: numbers out of double range (`1e400`)."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_int=_js_int, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return _MALFORMED


def _js_int(text: str) -> int | float:
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else float(value)


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


def _too_large(cap: int) -> ContentTooLargeError:
    return ContentTooLargeError(
        f"request entity too large: a signal payload may have at most {cap} bytes "
        f"(SWITCHMAN_SIGNAL_MAX_BYTES={cap} on this server).",
        headers={"Connection": "close"},
    )


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if headers:
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: SwitchmanError) -> None:
    await _send(send, error.status_code, orjson.dumps(error.body()), error.headers)


async def _refuse(send: Send, error: SwitchmanError, name: str, *, exists: bool | None) -> None:
    """Answer a call to endpoint `name` with `error`, counted in the metrics (`exists`: what the call
    showed about the endpoint, see `metrics.signal_received`)."""
    metrics.signal_received(name, metrics.refusal_outcome(error), exists=exists)
    await _send_error(send, error)


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description}  # app.py's OpenAPI document gives every error Unleash's error body


# The OpenAPI path item of the call (served by `IngestFastPath`, which no router sees), and the schemas
# it refers to; app.py merges both into /openapi.json.
openapi_components: dict[str, Any] = model_components(SignalsSchema)
openapi_paths: dict[str, Any] = {
    PATH: {
        "post": {
            "tags": ["Operational"],
            "operationId": "call-signal-endpoint",
            "summary": "[BETA] Send a signal to a signal endpoint",
            "description": (
                "Stores the JSON object in the body as a signal of the named endpoint and answers once "
                "it is committed. Authenticate with one of the endpoint's tokens, bare, as "
                "`Bearer <token>`, or as the password of Basic credentials (for senders that can only put "
                "credentials in the URL). The body is parsed as JSON whatever its content type, except that an "
                "`application/x-www-form-urlencoded` body is stored as an object of its fields (a "
                '`payload` field holding JSON decoded); a JSON array is stored as `{"items": [...]}`; '
                "an empty body is the payload `{}`. Action sets react to the signal asynchronously."
            ),
            "security": [{"bearerToken": []}, {"apiKey": []}, {"basicAuth": []}],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "additionalProperties": True}
                    },
                },
            },
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                *(
                    {
                        "name": header,
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": _DELIVERY_KEY_MAX},
                        "description": (
                            "A delivery id (the first of Idempotency-Key, webhook-id, X-GitHub-Delivery "
                            "present): a repeat within SWITCHMAN_SIGNAL_DELIVERY_WINDOW_SECONDS stores "
                            "nothing and is answered with the first delivery's signal. Without one, the "
                            "delivery id of the endpoint's sender format, if it names one (PagerDuty's "
                            "event.id, Datadog's id, SNS's MessageId, Sentry's Request-ID header)."
                        ),
                    }
                    for header in ("Idempotency-Key", "webhook-id", "X-GitHub-Delivery")
                ),
            ],
            "responses": {
                "200": {
                    "description": (
                        "The stored signal (`signalsSchema`); for a repeated delivery id, the first "
                        "delivery's signal, with `Idempotent-Replayed: true`."
                    ),
                    "headers": {
                        "Idempotent-Replayed": {
                            "description": "`true` when nothing was stored because the delivery was a repeat.",
                            "schema": {"type": "string", "enum": ["true"]},
                        }
                    },
                    "content": {"application/json": {"schema": model_ref(SignalsSchema)}},
                },
                "400": _error_response(
                    "The body is not a JSON object or array (nor a form), or is malformed."
                ),
                "401": _error_response("No token, or not a token of this signal endpoint."),
                "404": _error_response("No enabled signal endpoint has this name."),
                "413": _error_response("The body is larger than SWITCHMAN_SIGNAL_MAX_BYTES."),
                "429": _error_response("Too many calls to this endpoint; see `Retry-After`."),
                "503": _error_response("The signal could not be stored; nothing was acknowledged."),
            },
        }
    }
}
