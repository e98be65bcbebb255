"""A small typed layer over aiohttp for the JSON API under ``/api/v1``.

One declaration per endpoint (:class:`Endpoint`) drives routing, authentication, role checks,
request validation with pydantic, the JSON error shape, and the OpenAPI 3 document, so the
document cannot drift from what the server does.

Errors are JSON: ``{"error": {"code", "message", "fields": [{"field", "problem"}]}}``. A body
that fails validation is a 422 naming every bad field; input values are never echoed back or
logged, since they may be case content.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from node.core.store.tokens import Role
from schemas.errors import validation_problems
from schemas.strict import UNKNOWN_FIELD, dropped_fields, unknown_fields

log = logging.getLogger("minga.api")

API_PREFIX = "/api/v1"
MAX_JSON_DEPTH: Final = 64
"""Deeper request bodies are refused before parsing (a case nests four levels)."""
_JSON_STRUCTURE: Final = re.compile(rb'[\[\]{}"\\]')
_OPENERS: Final = frozenset(b"[{")
_CLOSERS: Final = frozenset(b"]}")
_QUOTE: Final = ord('"')
_BACKSLASH: Final = ord("\\")


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role


Authenticator = Callable[[str], Awaitable[Principal | None]]


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a human message, optional field problems."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[FieldProblem] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    def response(self) -> web.Response:
        body = ErrorBody(error=ErrorDetail(code=self.code, message=self.message,
                                           fields=self.fields))
        return web.json_response(body.model_dump(mode="json"), status=self.status)


def field_problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Field paths and problems of a validation error, without the offending values.

    Paths are written as ``schemas`` writes them (``body.victims[0].name``), and a model-level
    problem reported as "field: problem" is filed under that field.
    """
    return [
        FieldProblem(field="(body)" if problem.path == "$" else problem.path,
                     problem=problem.problem)
        for problem in validation_problems(error, prefix)
    ]


def invalid(
    fields: list[FieldProblem], message: str = "the request has invalid fields"
) -> ApiError:
    return ApiError(422, "invalid", message, fields)


B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


@dataclass
class Call(Generic[B, Q]):
    """A validated request, handed to an endpoint's handler."""

    request: web.Request
    principal: Principal
    body: B
    query: Q
    path: dict[str, str]


class NoBody(BaseModel):
    pass


class NoQuery(BaseModel):
    pass


@dataclass(frozen=True)
class FileAnswer:
    """A file the API serves as itself (``curl -o`` gives the file): its bytes, media type,
    download name, and headers that say more about it (e.g. what a publication left out)."""

    content: bytes
    media_type: str
    file_name: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, status: int) -> web.Response:
        return web.Response(status=status, body=self.content, headers={
            **self.headers,
            "Content-Type": self.media_type,
            "Content-Disposition": content_disposition(self.file_name),
        })


def content_disposition(file_name: str, kind: str = "attachment") -> str:
    quoted = urllib.parse.quote(file_name, safe="")
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "'")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"


@dataclass(frozen=True)
class StreamedFile:
    """A :class:`FileAnswer` too large to hold in memory: its bytes come from ``chunks`` as
    they are sent (an evidence file)."""

    chunks: AsyncIterator[bytes]
    size: int
    media_type: str
    file_name: str
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, request: web.Request, status: int) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={
            **self.headers, "Content-Type": self.media_type,
            "Content-Disposition": content_disposition(self.file_name)})
        response.content_length = self.size
        await response.prepare(request)
        async for chunk in self.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


Handler = Callable[
    [Call[Any, Any]], Awaitable[BaseModel | FileAnswer | StreamedFile | None]]


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: what this endpoint's answer lets a client call next, with which path
    parameters taken from the answer's body (``{"record_id": "record_id"}``)."""

    name: str
    method: str
    path: str
    parameters: dict[str, str]


def operation_id(method: str, path: str) -> str:
    """A unique, stable OpenAPI operation id (method and path make an endpoint unique):
    ``GET /cases/{record_id}`` -> ``get_cases_record_id``."""
    words = re.findall(r"[a-z0-9]+", path.lower())
    return "_".join([method.lower(), *words])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # relative to API_PREFIX, aiohttp syntax: "/cases/{record_id}"
    handler: Handler
    summary: str
    role: Role = Role.viewer
    body: type[BaseModel] = NoBody
    query: type[BaseModel] = NoQuery
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    """Media types of the files this endpoint serves (its handler answers a FileAnswer)."""
    file_headers: tuple[str, ...] = ()
    """Headers that describe the served file, for the OpenAPI document."""
    links: tuple[Link, ...] = ()
    """What the answer lets a client call next (OpenAPI links; stateful API tests follow them)."""
    upload: str | None = None
    """The multipart/form-data field that carries files, for an endpoint whose handler streams
    the request body itself (``body`` is then ``NoBody``)."""


def setting_endpoints(
    path: str, model: type[B], load: Callable[[], Awaitable[B]],
    save: Callable[[B, str], Awaitable[object]], *, read: str, change: str,
    tags: tuple[str, ...] = (),
) -> list[Endpoint]:
    """``GET`` and ``PUT`` of one admin setting: ``load()`` reads it, ``save(value, actor)``
    stores it; the answer to a ``PUT`` is the setting as stored."""

    async def get(call: Call[NoBody, NoQuery]) -> B:
        return await load()

    async def put(call: Call[B, NoQuery]) -> B:
        await save(call.body, call.principal.user)
        return await load()

    return [Endpoint("GET", path, get, read, Role.admin, response=model, tags=tags),
            Endpoint("PUT", path, put, change, Role.admin, body=model, response=model,
                     tags=tags)]


@dataclass
class Api:
    """The set of endpoints of one node, mounted on an aiohttp application."""

    title: str
    version: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def add(self, endpoint: Endpoint) -> None:
        self.endpoints.append(endpoint)

    def mount(self, app: web.Application, authenticate: Authenticator) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(
                endpoint.method, API_PREFIX + endpoint.path, _route(endpoint, authenticate)
            )
        app.router.add_get(API_PREFIX + "/openapi.json", self._serve_openapi)
        app.middlewares.append(_json_errors)

    async def _serve_openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    def openapi(self) -> dict[str, Any]:
        return openapi_document(self)


async def _read_json(request: web.Request) -> Any:
    """The JSON body an endpoint declared; a missing or empty one is refused, never read as
    ``{}`` (for a setting, that would silently reset every field to its default)."""
    missing = ApiError(400, "bad_json", "this request needs a JSON body (the document lists "
                                        "its fields)")
    if not request.can_read_body:
        raise missing
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise ApiError(413, "too_large", f"the request body is too large: {error.text}") \
            from None
    if not raw.strip():
        raise missing
    if json_nesting_depth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, "too_deep",
                       f"the request body nests arrays and objects deeper than {MAX_JSON_DEPTH}"
                       " levels")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "bad_json", "the request body is not valid JSON") from None
    except ValueError:  # an integer longer than Python reads (sys.get_int_max_str_digits)
        raise ApiError(400, "number_too_long", "a number in the request body has more digits"
                       f" than the node reads ({sys.get_int_max_str_digits()})") from None


def json_nesting_depth(raw: bytes, stop_above: int) -> int:
    """How deep arrays and objects nest in the JSON text ``raw``, counted before parsing (a
    parser recurses once per level); counting stops once it passes ``stop_above``. Only the
    bytes that can matter are visited: brackets, quotes and backslashes."""
    depth = deepest = 0
    in_string = False
    skip = -1  # the byte after a backslash inside a string
    for found in _JSON_STRUCTURE.finditer(raw):
        at = found.start()
        byte = raw[at]
        if at == skip:
            continue
        if in_string:
            if byte == _BACKSLASH:
                skip = at + 1
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_above:
                break
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def _validate(model: type[BaseModel], data: Any, location: str) -> BaseModel:
    """``data`` as ``model``; what a caller sends its own node names no unknown field (record
    models keep unknown fields for peers, never for the API: a typo would lose its value)."""
    try:
        validated = model.model_validate(data)
    except ValidationError as error:
        raise invalid(field_problems(error, location)) from None
    unknown = [*unknown_fields(validated, location), *dropped_fields(model, data, location)]
    if unknown:
        raise invalid([FieldProblem(field=path, problem=UNKNOWN_FIELD) for path in unknown])
    return validated


async def _authenticate(request: web.Request, authenticate: Authenticator) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "send an API token as 'Authorization: Bearer …'")
    principal = await authenticate(token.strip())
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown or revoked")
    return principal


def _route(endpoint: Endpoint, authenticate: Authenticator) -> Callable[
    [web.Request], Awaitable[web.StreamResponse]
]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = await _authenticate(request, authenticate)
        if not principal.role.allows(endpoint.role):
            needed, actual = endpoint.role.value, principal.role.value
            raise ApiError(403, "forbidden", f"this needs the {needed} role; you are {actual}")
        query = _validate(endpoint.query, dict(request.query), "query")
        body = (
            _validate(endpoint.body, await _read_json(request), "body")
            if endpoint.body is not NoBody
            else NoBody()
        )
        call: Call[Any, Any] = Call(request, principal, body, query, dict(request.match_info))
        result = await endpoint.handler(call)
        if result is None:
            return web.Response(status=204 if endpoint.status == 200 else endpoint.status)
        if isinstance(result, FileAnswer):
            return result.response(endpoint.status)
        if isinstance(result, StreamedFile):
            return await result.send(request, endpoint.status)
        return web.json_response(result.model_dump(mode="json"), status=endpoint.status)

    return handle


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return ApiError(error.status, error.reason.lower().replace(" ", "_"),
                        error.reason).response()
    except Exception as error:  # the answer must stay JSON and content-free
        log.error("internal error in %s %s: %s", request.method, request.rel_url.path,
                  type(error).__name__)
        return ApiError(500, "internal", "internal error; see the node log").response()


def openapi_document(api: Api) -> dict[str, Any]:
    """The OpenAPI 3.1 document, generated from the endpoints and their pydantic models."""
    models: set[type[BaseModel]] = {ErrorBody}
    for endpoint in api.endpoints:
        models.update(m for m in (endpoint.body, endpoint.response) if m and m is not NoBody)
        if endpoint.query is not NoQuery:
            models.add(endpoint.query)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, definitions = models_json_schema(
        [(model, "validation") for model in ordered],
        ref_template="#/components/schemas/{model}",
    )
    ref_of = {model: refs[(model, "validation")]["$ref"] for model in ordered}
    schemas: dict[str, Any] = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    _check_links(api.endpoints)
    for endpoint in api.endpoints:
        operation = _operation(endpoint, ref_of, schemas)
        paths.setdefault(API_PREFIX + endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _check_links(endpoints: list[Endpoint]) -> None:
    known = {(e.method, e.path): e for e in endpoints}
    for endpoint in endpoints:
        for link in endpoint.links:
            target = known.get((link.method, link.path))
            if target is None:
                raise ValueError(f"link {link.name} of {endpoint.method} {endpoint.path} names "
                                 f"no endpoint: {link.method} {link.path}")
            missing = set(re.findall(r"\{(\w+)\}", link.path)) - set(link.parameters)
            if missing:
                raise ValueError(f"link {link.name} of {endpoint.method} {endpoint.path} "
                                 f"leaves out {sorted(missing)}")


def _operation(
    endpoint: Endpoint, ref_of: dict[type[BaseModel], str], schemas: dict[str, Any]
) -> dict[str, Any]:
    error_ref = {"$ref": ref_of[ErrorBody]}
    responses: dict[str, Any] = {}
    if endpoint.files:
        responses[str(endpoint.status)] = {
            "description": "the file, with a download name (Content-Disposition)",
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}
                        for media_type in endpoint.files},
            "headers": {name: {"schema": {"type": "string"}} for name in endpoint.file_headers},
        }
    elif endpoint.response is None:
        responses[str(204 if endpoint.status == 200 else endpoint.status)] = {
            "description": "done"
        }
    else:
        responses[str(endpoint.status)] = {
            "description": "success",
            "content": {"application/json": {"schema": {"$ref": ref_of[endpoint.response]}}},
        }
        if endpoint.links:
            responses[str(endpoint.status)]["links"] = {
                link.name: {"operationId": operation_id(link.method, link.path),
                            "parameters": {name: f"$response.body#/{pointer}"
                                           for name, pointer in link.parameters.items()}}
                for link in endpoint.links}
    error_codes = {401, 403, *endpoint.errors}
    if endpoint.body is not NoBody or endpoint.upload is not None:
        error_codes |= {400, 422}
    if endpoint.query is not NoQuery:
        error_codes.add(422)
    for code in sorted(error_codes):
        responses[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": error_ref}},
        }
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": operation_id(endpoint.method, endpoint.path),
        "responses": responses,
        "parameters": _parameters(endpoint, ref_of, schemas),
    }
    if endpoint.tags:
        operation["tags"] = list(endpoint.tags)
    if endpoint.upload is not None:
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [endpoint.upload], "properties": {
                endpoint.upload: {"type": "array",
                                  "items": {"type": "string", "format": "binary"}}}}}}}
    if endpoint.body is not NoBody:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref_of[endpoint.body]}}},
        }
    return operation


def _parameters(
    endpoint: Endpoint, ref_of: dict[type[BaseModel], str], schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    parameters = []
    for segment in endpoint.path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            parameters.append(
                {"name": segment[1:-1], "in": "path", "required": True,
                 "schema": {"type": "string"}}
            )
    if endpoint.query is NoQuery:
        return parameters
    schema = schemas[ref_of[endpoint.query].rsplit("/", 1)[1]]
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        parameters.append(
            {"name": name, "in": "query", "required": name in required, "schema": prop}
        )
    return parameters
