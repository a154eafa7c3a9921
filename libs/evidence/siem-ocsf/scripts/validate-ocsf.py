"""Validates OCSF events with an independent implementation (pydantic-ocsf, from PyPI).

Usage: validate-ocsf.py FILE   (FILE: a JSON array of OCSF event objects)
Prints one JSON object: {"results": [{"index", "class_uid", "ok", "errors": [...]}, ...]}.

Each event is validated by the Pydantic model of its class in the OCSF version its
metadata.version names: types, required attributes, enum values, id/label consistency
(activity_id/activity_name, ...), and class_uid/category_uid/type_uid arithmetic. The models
accept unknown attributes (extra="allow"), so this script also reports every attribute that the
OCSF schema does not define (outside `unmapped`, which OCSF leaves free-form).
"""
import importlib
import json
import sys

from pydantic import BaseModel, ValidationError

import ocsf


# The classes Custodian publishes (docs/siem-ocsf.md); the model names are pydantic-ocsf's.
CLASS_MODELS = {
    2003: "ComplianceFinding",
    3002: "Authentication",
    3003: "AuthorizeSession",
    4002: "HttpActivity",
    4007: "SshActivity",
    6003: "ApiActivity",
    6005: "DatastoreActivity",
}


def unknown_attributes(value, path):
    """Paths of attributes the OCSF models do not define."""
    found = []
    if isinstance(value, BaseModel):
        for key, extra in (value.model_extra or {}).items():
            found.append(f"{path}/{key}")
        for name in type(value).model_fields:
            if name == "unmapped":
                continue
            found.extend(unknown_attributes(getattr(value, name), f"{path}/{name}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(unknown_attributes(item, f"{path}/{i}"))
    return found


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        events = json.load(f)
    cache = {}
    results = []
    for index, event in enumerate(events):
        version = str(event.get("metadata", {}).get("version", ""))
        module_name = "v" + version.replace(".", "_")
        errors = []
        try:
            if module_name not in cache:
                cache[module_name] = importlib.import_module(f"ocsf.{module_name}.events")
            events_module = cache[module_name]
        except ImportError as error:
            results.append({"index": index, "class_uid": event.get("class_uid"), "ok": False, "errors": [f"unknown OCSF version {version!r}: {error}"]})
            continue
        model_name = CLASS_MODELS.get(event.get("class_uid"))
        model = getattr(events_module, model_name, None) if model_name else None
        if model is None:
            results.append({"index": index, "class_uid": event.get("class_uid"), "ok": False, "errors": [f"no OCSF {version} class with class_uid {event.get('class_uid')}"]})
            continue
        try:
            instance = model.model_validate(event)
            errors.extend(f"attribute not in OCSF {version}: {p}" for p in unknown_attributes(instance, ""))
        except ValidationError as error:
            errors.extend(f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        results.append({"index": index, "class_uid": event.get("class_uid"), "class": model.__name__, "ok": not errors, "errors": errors})
    json.dump({"ocsf_package": getattr(ocsf, "__version__", "unknown"), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
