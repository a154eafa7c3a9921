"""Validates an OSCAL assessment-results JSON document with compliance-trestle's OSCAL models.

Usage: python validate_assessment_results.py <file.json>
Prints {"ok": bool, "oscalVersion": str, "errors": [...]} and exits 0 when valid, 1 when not,
2 when trestle is missing. Used by Custodian's evidence tests as an independent validator
(installed by scripts/setup-python.sh into .tools/python).
"""
import json
import sys

try:
    from trestle.oscal import OSCAL_VERSION
    from trestle.oscal.assessment_results import AssessmentResults
except ImportError as error:  # pragma: no cover
    print(json.dumps({"ok": False, "errors": [f"compliance-trestle is not installed: {error}"]}))
    sys.exit(2)


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if not isinstance(document, dict) or "assessment-results" not in document:
        print(json.dumps({"ok": False, "errors": ["no assessment-results root"]}))
        return 1
    try:
        model = AssessmentResults.parse_obj(document["assessment-results"])
    except Exception as error:  # pydantic ValidationError and friends
        print(json.dumps({"ok": False, "trestleOscalVersion": OSCAL_VERSION, "errors": str(error).splitlines()[:40]}))
        return 1
    version = model.metadata.oscal_version
    while hasattr(version, "root"):  # pydantic RootModel wrappers
        version = version.root
    print(json.dumps({"ok": True, "trestleOscalVersion": OSCAL_VERSION, "oscalVersion": str(version), "results": len(model.results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
