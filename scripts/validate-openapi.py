#!/usr/bin/env python3
"""Checks wxfed's management API against its own OpenAPI document, with code
that is not wxfed's: openapi-spec-validator (the document is valid OpenAPI
3.1) and jsonschema (JSON Schema 2020-12, the dialect of OpenAPI 3.1).

    validate-openapi.py DOCUMENT.json [EXCHANGES.json]

DOCUMENT is what `GET /api/admin/openapi.json` served. EXCHANGES, when given,
is a list of recorded responses:
    [{"path": "/api/admin/accounts/{id}", "method": "get", "status": 200,
      "content_type": "application/json", "body": {...}}, ...]
Each must be documented (path template, method, status, media type) and its
body must match the documented schema.

Prints a JSON report; exits 1 when anything fails. Installed by
tests/sdk/install.sh (requirements.txt); run by tests/api/admin_api.
"""

import json
import sys
from urllib.parse import quote

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:wxfed:openapi"


def pointer(*parts):
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return quote("/" + "/".join(escaped), safe="/~")


def main():
    doc = json.load(open(sys.argv[1]))
    exchanges = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else []
    failures = []
    if not str(doc.get("openapi", "")).startswith("3.1"):
        failures.append(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    for error in OpenAPIV31SpecValidator(doc).iter_errors():
        failures.append(f"document: {error.message}")
    registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    checked = 0
    for ex in exchanges:
        where = f"{ex['method'].upper()} {ex['path']} {ex['status']}"
        op = doc.get("paths", {}).get(ex["path"], {}).get(ex["method"])
        if op is None:
            failures.append(f"{where}: operation not documented")
            continue
        responses = op.get("responses", {})
        status = str(ex["status"])
        if status not in responses:
            failures.append(f"{where}: status not documented (documented: {sorted(responses)})")
            continue
        content = responses[status].get("content", {})
        media = ex.get("content_type", "").split(";")[0].strip()
        if ex.get("body") is None:
            checked += 1
            continue
        if media not in content:
            failures.append(f"{where}: media type {media!r} not documented ({sorted(content)})")
            continue
        ref = DOC_URI + "#" + pointer("paths", ex["path"], ex["method"], "responses", status, "content", media, "schema")
        validator = Draft202012Validator({"$ref": ref}, registry=registry)
        for error in validator.iter_errors(ex["body"]):
            path = "/".join(str(p) for p in error.absolute_path)
            failures.append(f"{where}: body at /{path}: {error.message}")
        checked += 1
    print(json.dumps({"openapi": doc.get("openapi"), "checked": checked, "failures": failures}, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
