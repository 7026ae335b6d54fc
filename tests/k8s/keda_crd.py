"""The parts of KEDA's CRDs (keda.sh/v1alpha1, config/crd/bases in kedacore/keda) that an
object must satisfy to be admitted: required fields and their types. kubernetes-validate has
no schema for custom resources, so these are transcribed by hand from the CRDs'
openAPIV3Schema — required lists, int32 fields, string-valued trigger metadata — and checked
with jsonschema. Unknown fields are allowed, as the API server prunes rather than rejects
them in non-strict mode; the field names we use are pinned by the ``properties`` listed.
"""

from __future__ import annotations

from typing import Any

import jsonschema

INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}

_HPA_RULES = {
    "type": "object",
    "properties": {
        "policies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["periodSeconds", "type", "value"],
                "properties": {
                    "periodSeconds": {**INT32, "minimum": 1, "maximum": 1800},
                    "type": {"enum": ["Pods", "Percent"]},
                    "value": {**INT32, "minimum": 1},
                },
            },
        },
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "stabilizationWindowSeconds": {**INT32, "minimum": 0, "maximum": 3600},
    },
}

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}

SCALED_OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": INT32,
                "cooldownPeriod": INT32,
                "idleReplicaCount": INT32,
                "minReplicaCount": INT32,
                "maxReplicaCount": INT32,
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "properties": {"failureThreshold": INT32, "replicas": INT32},
                },
                "advanced": {
                    "type": "object",
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {
                                    "type": "object",
                                    "properties": {"scaleUp": _HPA_RULES, "scaleDown": _HPA_RULES},
                                },
                            },
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["metadata", "type"],
                        "properties": {
                            "type": {"type": "string", "minLength": 1},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["Value", "AverageValue", "Utilization"]},
                            # map[string]string in the CRD: a number here is rejected
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1},
                                    "kind": {
                                        "enum": [
                                            "TriggerAuthentication",
                                            "ClusterTriggerAuthentication",
                                        ]
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

_TARGET_REF = {
    "type": "object",
    "required": ["key", "name", "parameter"],
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "parameter": {"type": "string", "minLength": 1},
    },
}

TRIGGER_AUTHENTICATION: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "secretTargetRef": {"type": "array", "items": _TARGET_REF},
                "configMapTargetRef": {"type": "array", "items": _TARGET_REF},
                "env": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "parameter"],
                        "properties": {
                            "name": {"type": "string"},
                            "parameter": {"type": "string"},
                            "containerName": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}

SCHEMAS = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTHENTICATION}


def errors(obj: dict[str, Any]) -> list[str]:
    """Every way ``obj`` breaks its CRD's schema (empty: admitted)."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[obj["kind"]])
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
