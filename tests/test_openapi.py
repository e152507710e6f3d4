"""The OpenAPI document and the API cannot drift apart: same routes, same security, and real bodies fit its schemas."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Api, session_payload
from webinar_pay.web.openapi import OPENAPI

PREFIX = "/api/v1"
NEXT_YEAR = datetime.now(UTC).year + 1
JSON = "application/json"
OPERATIONS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOC_URI = "urn:webinar-pay:openapi"
RULE_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
CONVERTER_TYPES = {"int": "integer", "default": "string", "string": "string", "path": "string"}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _forbid_unknown_fields(node):
    """Undocumented fields in a response should fail the test (the published schemas stay open for clients)."""
    if isinstance(node, dict):
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _forbid_unknown_fields(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_unknown_fields(value)
    return node


class Contract:
    """Calls the API through the test client and checks each answer against the document."""

    def __init__(self, client, document: dict):
        self.client = client
        self.document = document
        strict = _forbid_unknown_fields(copy.deepcopy(document))
        self.registry = Registry().with_resource(DOC_URI, Resource(contents=strict, specification=DRAFT202012))

    def node(self, pointer: list[str]):
        node = self.document
        for part in pointer:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def follow(self, pointer: list[str]) -> list[str]:
        """The pointer of the object itself when `pointer` leads to a `$ref` (responses, parameters)."""
        while "$ref" in (node := self.node(pointer)):
            assert node["$ref"].startswith("#/"), node
            pointer = [_unescape(part) for part in node["$ref"][2:].split("/")]
        return pointer

    def operation(self, method: str, template: str) -> dict:
        return self.document["paths"][template][method.lower()]

    def schema_validator(self, pointer: list[str]) -> Draft202012Validator:
        uri = DOC_URI + "#/" + "/".join(_escape(part) for part in pointer)
        return Draft202012Validator({"$ref": uri}, registry=self.registry, format_checker=FormatChecker())

    def request_validator(self, method: str, template: str) -> Draft202012Validator:
        pointer = self.follow(["paths", template, method.lower(), "requestBody"])
        return self.schema_validator([*pointer, "content", JSON, "schema"])

    def check(self, method: str, template: str, response) -> dict:
        """Assert the status is documented for this operation and the body and headers are as documented."""
        responses = self.operation(method, template)["responses"]
        status = str(response.status_code)
        body = response.get_json()
        assert status in responses, f"{method} {template} answered an undocumented {status}: {body}"
        pointer = self.follow(["paths", template, method.lower(), "responses", status])
        documented = self.node(pointer)
        assert response.mimetype == JSON and JSON in documented["content"], (method, template, status)
        errors = sorted(self.schema_validator([*pointer, "content", JSON, "schema"]).iter_errors(body), key=str)
        assert not errors, f"{method} {template} {status}: " + "; ".join(
            f"{list(error.absolute_path)}: {error.message}" for error in errors
        )
        for header in documented.get("headers", {}):
            assert header in response.headers, f"{method} {template} {status}: no {header} header"
        return body

    def call(self, method: str, template: str, expect: int, *, body=None, token: str | None = None, **ids) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.open(PREFIX + template.format(**ids), method=method, json=body, headers=headers)
        assert response.status_code == expect, (method, template, response.status_code, response.get_json())
        return self.check(method, template, response)


@pytest.fixture
def document(client) -> dict:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def contract(client, document) -> Contract:
    return Contract(client, document)


def test_the_document_is_served_and_is_valid_openapi_3_1(client, contract, document):
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document == json.loads(json.dumps(OPENAPI))
    assert document["info"]["title"] == "webinar_pay API" and document["servers"] == [{"url": PREFIX}]
    validate(document, cls=OpenAPIV31SpecValidator)
    contract.check("GET", "/openapi.json", client.get(f"{PREFIX}/openapi.json"))


def test_paths_and_methods_are_exactly_the_api_routes(app, contract):
    routes: dict[str, set[str]] = {}
    converters: dict[str, dict[str, str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = RULE_ARGUMENT.sub(r"{\2}", rule.rule.removeprefix(PREFIX))
        routes.setdefault(path, set()).update(method.lower() for method in rule.methods - {"HEAD", "OPTIONS"})
        converters[path] = {name: converter or "default" for converter, name in RULE_ARGUMENT.findall(rule.rule)}
    documented = {path: set(item) & OPERATIONS for path, item in contract.document["paths"].items()}
    assert documented == routes

    for path, item in contract.document["paths"].items():
        for method in set(item) & OPERATIONS:
            declared = {}
            for where in (["paths", path], ["paths", path, method]):
                for index in range(len(contract.node(where).get("parameters", []))):
                    parameter = contract.node(contract.follow([*where, "parameters", str(index)]))
                    declared[parameter["name"]] = parameter
            in_path = {name: p for name, p in declared.items() if p["in"] == "path"}
            assert set(in_path) == set(converters[path]), (method, path)
            for name, converter in converters[path].items():
                assert in_path[name]["required"] is True
                assert in_path[name]["schema"]["type"] == CONVERTER_TYPES[converter], (method, path, name)


def _documented_operations(document: dict):
    for path, item in document["paths"].items():
        for method in set(item) & OPERATIONS:
            yield method.upper(), path, item[method]


@pytest.mark.parametrize("token", [None, "wp_not-a-real-token"])
def test_documented_security_is_what_the_code_enforces(client, contract, published_session, token):
    session_id, _owner = published_session()
    status, started = Api(client).post(
        f"{PREFIX}/sessions/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    )
    assert status == 201
    ids = {"session_id": session_id, "order_id": started["order_id"], "code_id": 1}
    global_security = contract.document["security"]
    for method, path, operation in _documented_operations(contract.document):
        needs_token = operation.get("security", global_security) != []
        response = client.open(
            PREFIX + path.format(**ids),
            method=method,
            json={} if "requestBody" in operation else None,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        assert (response.status_code == 401) == needs_token, (method, path, response.status_code)
        contract.check(method, path, response)


def test_a_sale_from_start_to_finish_matches_the_schemas(contract, create_creator):
    _creator_id, token = create_creator()
    creator = {"token": token}
    session = contract.call("POST", "/sessions", 201, body=session_payload(capacity=1), **creator)
    ids = {"session_id": session["id"]}
    assert session["status"] == "draft" and session["starts_at"].endswith("Z")
    contract.call("GET", "/sessions", 200, **creator)
    contract.call("GET", "/sessions/{session_id}", 200, **creator, **ids)
    patched = contract.call(
        "PATCH", "/sessions/{session_id}", 200, body={"reminder_offsets_minutes": [30, 2880]}, **creator, **ids
    )
    assert patched["reminder_offsets_minutes"] == [2880, 30]
    assert contract.call("POST", "/sessions/{session_id}/publish", 200, **creator, **ids)["status"] == "published"

    buyer = {"name": "Bo", "email": "Bo@Example.com", "provider": "stripe"}
    started = contract.call("POST", "/sessions/{session_id}/checkout", 201, body=buyer, **ids)
    assert started["status"] == "pending"
    sold_out = contract.call("POST", "/sessions/{session_id}/checkout", 409, body=buyer, **ids)
    assert sold_out["error"] == "sold_out"

    (order,) = contract.call("GET", "/sessions/{session_id}/orders", 200, **creator, **ids)["orders"]
    assert (order["id"], order["email"], order["enrollment"]) == (started["order_id"], "bo@example.com", None)
    own = contract.call("GET", "/orders/{order_id}", 200, token=started["access_token"], order_id=started["order_id"])
    assert own == order == contract.call("GET", "/orders/{order_id}", 200, **creator, order_id=order["id"])

    intruder = {"token": create_creator(email="mallory@example.com")[1]}
    contract.call("GET", "/sessions/{session_id}", 404, **intruder, **ids)
    contract.call("GET", "/orders/{order_id}", 404, **intruder, order_id=order["id"])
    contract.call("GET", "/orders/{order_id}", 401, token=started["access_token"], order_id=order["id"] + 1000)


def test_a_free_zoom_session_matches_the_schemas(contract, create_creator):
    token = create_creator()[1]
    payload = session_payload(price=0, platform="zoom", zoom_meeting_id="123 4567 8901", zoom_kind="webinar")
    del payload["join_link"]
    session = contract.call("POST", "/sessions", 201, body=payload, token=token)
    assert (session["zoom_meeting_id"], session["zoom_kind"], session["join_link"]) == ("12345678901", "webinar", None)
    contract.call("POST", "/sessions/{session_id}/publish", 200, token=token, session_id=session["id"])

    buyer = {"name": "Cy", "email": "cy@example.com"}
    started = contract.call("POST", "/sessions/{session_id}/checkout", 201, body=buyer, session_id=session["id"])
    assert started["status"] == "paid"
    order = contract.call("GET", "/orders/{order_id}", 200, token=started["access_token"], order_id=started["order_id"])
    assert order["provider"] == "free" and order["paid_at"] and order["enrollment"]["status"] == "enrolled"


def test_error_bodies_match_the_schemas(contract, create_creator, published_session):
    token = create_creator(email="other@example.com")[1]
    bad = session_payload(title="", currency="EURO", capacity=0, colour="red")
    error = contract.call("POST", "/sessions", 422, body=bad, token=token)
    assert error["error"] == "validation_error" and {"title", "currency", "capacity", "colour"} <= set(error["fields"])
    error = contract.call("POST", "/sessions", 422, body=["not", "an", "object"], token=token)
    assert "fields" not in error

    past = contract.call(
        "POST",
        "/sessions",
        201,
        body=session_payload(starts_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
        token=token,
    )
    contract.call("POST", "/sessions/{session_id}/publish", 409, token=token, session_id=past["id"])
    contract.call("GET", "/sessions/{session_id}", 404, token=token, session_id=past["id"] + 1000)
    contract.call("PATCH", "/sessions/{session_id}", 422, body={"capacity": "many"}, token=token, session_id=past["id"])
    contract.call("GET", "/sessions", 401)

    session_id, _owner = published_session()
    checkout = "/sessions/{session_id}/checkout"
    error = contract.call("POST", checkout, 422, body={"name": "", "email": "nope"}, session_id=session_id)
    assert set(error["fields"]) == {"name", "email"}
    not_offered = {"name": "A", "email": "a@example.com", "provider": "paypal"}
    error = contract.call("POST", checkout, 422, body=not_offered, session_id=session_id)
    assert set(error["fields"]) == {"provider"} and "stripe" in error["fields"]["provider"]
    contract.call("POST", checkout, 404, body={"name": "A", "email": "a@example.com"}, session_id=past["id"])


@pytest.mark.parametrize(
    "overrides, server_accepts",
    [
        ({}, True),
        ({"description": None}, True),
        ({"platform": "youtube", "youtube_url": "https://www.youtube.com/watch?v=abc"}, True),
        ({"platform": "zoom", "zoom_meeting_id": "987654321"}, True),
        ({"reminder_offsets_minutes": []}, True),
        ({"starts_at": f"{NEXT_YEAR}-01-15T09:00", "timezone": "Asia/Tokyo"}, True),
        ({"price": 0, "currency": "jpy"}, True),
        ({"colour": "red"}, False),
        ({"join_link": None}, False),
        ({"join_link": "ftp://example.com/x"}, False),
        ({"platform": "zoom", "zoom_meeting_id": "12ab"}, False),
        ({"platform": "zoom"}, True),
        ({"platform": "teams"}, False),
        ({"price": -1}, False),
        ({"capacity": 0}, False),
        ({"duration_minutes": 1441}, False),
        ({"currency": "EURO"}, False),
        ({"title": "x" * 201}, False),
        ({"reminder_offsets_minutes": [0]}, False),
        ({"reminder_offsets_minutes": [4]}, False),
        ({"reminder_offsets_minutes": list(range(5, 16))}, False),
        ({"reminder_offsets_minutes": [5, 43_200]}, True),
        ({"reminder_offsets_minutes": [43_201]}, False),
        ({"reminder_offsets_minutes": None}, True),
        ({"currency": "AAA"}, False),
        ({"currency": "Eur"}, False),
        ({"starts_at": ""}, False),
        ({"starts_at": f"{NEXT_YEAR}-06-01"}, False),
        ({"starts_at": f"{NEXT_YEAR}-06-01 18:30"}, False),
        ({"platform": "zoom", "zoom_meeting_id": {}}, False),
        ({"platform": "zoom", "zoom_meeting_id": 123456789}, True),
        ({"zoom_meeting_id": "12ab"}, False),
        ({"join_link": "https://meet.example.com/" + "x" * 480}, False),
        ({"join_link": "https://meet.example.com/a b"}, False),
        ({"title": "Two\nlines"}, False),
        ({"description": "Two\nlines"}, True),
        ({"cancellation_hours": ""}, False),
    ],
)
def test_session_input_schema_agrees_with_the_server(contract, create_creator, overrides, server_accepts):
    payload = session_payload(**overrides)
    payload = {key: value for key, value in payload.items() if value is not None or key in overrides}
    if overrides.get("platform") in {"youtube", "zoom"}:
        del payload["join_link"]
    documented_valid = contract.request_validator("POST", "/sessions").is_valid(payload)
    assert documented_valid == server_accepts
    contract.call("POST", "/sessions", 201 if server_accepts else 422, body=payload, token=create_creator()[1])


def test_attendee_data_answers_match_the_schemas(contract, create_creator):
    token = create_creator()[1]
    session = contract.call("POST", "/sessions", 201, body=session_payload(price=0), token=token)
    contract.call("POST", "/sessions/{session_id}/publish", 200, token=token, session_id=session["id"])
    buyer = {"name": "Cy", "email": "cy@example.com", "consents": ["checkout_recovery", "creator_news"]}
    started = contract.call("POST", "/sessions/{session_id}/checkout", 201, body=buyer, session_id=session["id"])
    ids = {"order_id": started["order_id"]}

    export = contract.call("GET", "/orders/{order_id}/export", 200, token=token, **ids)
    assert [c["purpose"] for c in export["orders"][0]["consents"]] == ["checkout_recovery", "creator_news"]
    intruder = create_creator(email="mallory@example.com")[1]
    contract.call("GET", "/orders/{order_id}/export", 404, token=intruder, **ids)
    contract.call("POST", "/orders/{order_id}/erase", 404, token=intruder, **ids)

    erased = contract.call("POST", "/orders/{order_id}/erase", 200, token=token, **ids)
    assert erased["erased_order_ids"] == [started["order_id"]] and erased["order"]["erased_at"]
    assert contract.call("POST", "/orders/{order_id}/erase", 200, token=token, **ids)["erased_order_ids"] == []
    assert contract.call("GET", "/orders/{order_id}/export", 200, token=token, **ids)["attendee"]["erased_at"]
    gone = contract.call("GET", "/orders/{order_id}", 410, token=started["access_token"], **ids)
    assert gone["error"] == "erased"
