#!/usr/bin/env python3
"""Chart tests for helm/kms, without a helm binary.

Renders the chart with Helm's own Go template engine (the helm-python-sdk package binds Helm's
Go SDK, so rendering and values.schema.json validation are exactly Helm's), then:
  - lints it as `helm lint --strict` does, with every value set;
  - validates every rendered object against the Kubernetes OpenAPI schemas of the oldest and a
    recent supported Kubernetes version (kubernetes-validate, strict: unknown fields fail);
    cert-manager and Prometheus Operator objects, whose schemas are CRDs, against the subset of
    their CRD schema the chart uses;
  - checks what a schema cannot see: references between objects (volumes, ports, Secrets,
    selectors), and the rendered kmsd.toml (valid TOML, the keys kmsd reads);
  - checks that broken values are refused, with the reason.

Usage: check_chart.py [CHART_DIR [CONFIG_DIR]]   (default: helm/kms of this repository)
With CONFIG_DIR, the kmsd.toml of every value set is written there as <value set>.toml, for kmsd
itself to load (tests/tests/helm_chart.rs does).
Prints one line per check and a closing "N passed, N failed" line; exits non-zero on failure.
"""

import glob
import os
import sys
import tomllib

import helm_python
import jsonschema
import kubernetes_validate
import yaml

KUBE_VERSIONS = ["1.27.0", "1.33.0"]
RELEASE = "kms"
NAMESPACE = "kms-test"

# The fields of the two CRD kinds the chart renders, from their upstream CRDs (cert-manager.io/v1
# Certificate, monitoring.coreos.com/v1 ServiceMonitor). Unknown fields are refused, as the API
# server's structural-schema pruning would drop them silently.
_META = {"type": "object", "required": ["name", "namespace"]}
CRD_SCHEMAS = {
    ("cert-manager.io/v1", "Certificate"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["secretName", "issuerRef"],
                "properties": {
                    "secretName": {"type": "string", "minLength": 1},
                    "duration": {"type": "string"},
                    "renewBefore": {"type": "string"},
                    "commonName": {"type": "string"},
                    "privateKey": {
                        "type": "object", "additionalProperties": False,
                        "properties": {
                            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                            "size": {"type": "integer"},
                            "rotationPolicy": {"enum": ["Never", "Always"]},
                            "encoding": {"enum": ["PKCS1", "PKCS8"]},
                        },
                    },
                    "usages": {"type": "array", "items": {"enum": [
                        "signing", "digital signature", "content commitment", "key encipherment",
                        "key agreement", "data encipherment", "cert sign", "crl sign",
                        "encipher only", "decipher only", "any", "server auth", "client auth",
                        "code signing", "email protection", "s/mime", "ipsec end system",
                        "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                        "microsoft sgc", "netscape sgc"]}},
                    "uris": {"type": "array", "items": {"type": "string"}},
                    "dnsNames": {"type": "array", "items": {"type": "string"}},
                    "ipAddresses": {"type": "array", "items": {"type": "string"}},
                    "issuerRef": {
                        "type": "object", "additionalProperties": False, "required": ["name"],
                        "properties": {"name": {"type": "string", "minLength": 1},
                                       "kind": {"type": "string"}, "group": {"type": "string"}},
                    },
                },
            },
        },
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {"type": "object", "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                    "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}}}},
                    "endpoints": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"}, "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        },
                    }},
                },
            },
        },
    },
}

# Values that must be refused, and a fragment of the reason.
BROKEN = [
    ("plaintext without consent", {"rootKey": {"existingSecret": "k"}}, "allowInsecurePlaintext"),
    ("no root key Secret", {"allowInsecurePlaintext": True}, "rootKey.existingSecret"),
    ("TLS without certificates", {"rootKey": {"existingSecret": "k"}, "tls": {"enabled": True}},
     "tls.existingSecret"),
    ("unknown root key provider", {"rootKey": {"provider": "vault", "existingSecret": "k"},
                                   "allowInsecurePlaintext": True}, "provider"),
    ("an account that is not 12 digits", {"account": "123", "rootKey": {"existingSecret": "k"},
                                           "allowInsecurePlaintext": True}, "account"),
    ("zero replicas", {"replicas": 0, "rootKey": {"existingSecret": "k"},
                       "allowInsecurePlaintext": True}, "replicas"),
    ("fewer replicas than initial members", {"replicas": 2, "rootKey": {"existingSecret": "k"},
                                            "allowInsecurePlaintext": True}, "initialMembers"),
    ("a misspelt value", {"replica": 3, "rootKey": {"existingSecret": "k"},
                          "allowInsecurePlaintext": True}, "replica"),
    ("AWS endpoint without access keys", {"aws": {"enabled": True}, "rootKey": {"existingSecret": "k"},
                                          "allowInsecurePlaintext": True}, "aws.credentials"),
    ("a token that is not a digest", {"tokens": {"app": "secret"}, "rootKey": {"existingSecret": "k"},
                                      "allowInsecurePlaintext": True}, "tokens"),
    ("PKCS#11 without a module", {"rootKey": {"provider": "pkcs11"}, "allowInsecurePlaintext": True},
     "pkcs11"),
]


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        try:
            fn()
        except Exception as err:  # every failure is reported, the others still run
            self.failed += 1
            print(f"FAIL {name}: {err}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def render(chart, values):
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    notes = {path: text for path, text in manifests.items() if path.endswith("NOTES.txt")}
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append((path, doc))
    return objects, notes


def validate_objects(objects):
    for path, obj in objects:
        key = (obj.get("apiVersion"), obj.get("kind"))
        where = f"{path}: {key[1]} {obj.get('metadata', {}).get('name')}"
        if key in CRD_SCHEMAS:
            try:
                jsonschema.validate(obj, CRD_SCHEMAS[key])
            except jsonschema.ValidationError as err:
                raise AssertionError(f"{where}: {err.message} at {list(err.absolute_path)}") from None
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                raise AssertionError(f"{where} (Kubernetes {version}): {err.message} at "
                                     f"{list(err.path)}") from None


def by_kind(objects, kind):
    return [obj for _, obj in objects if obj["kind"] == kind]


def kmsd_toml_text(objects):
    """The rendered node configuration."""
    for _, obj in objects:
        data = obj.get("data") or obj.get("stringData") or {}
        if obj["kind"] in ("ConfigMap", "Secret") and "kmsd.toml" in data:
            return data["kmsd.toml"]
    raise AssertionError("no ConfigMap or Secret holds kmsd.toml")


def kmsd_toml(objects):
    """The rendered node configuration, parsed."""
    return tomllib.loads(kmsd_toml_text(objects))


def check_references(objects, values):
    """What schemas cannot see: names that must match between objects."""
    objs = [obj for _, obj in objects]
    (sts,) = by_kind(objects, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    container_ports = {}
    for container in pod.get("initContainers", []) + pod["containers"]:
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes or mount["name"] in claims, \
                f"{container['name']} mounts unknown volume {mount['name']}"
        for port in container.get("ports", []):
            container_ports[port["name"]] = port["containerPort"]
    (kmsd,) = [c for c in pod["containers"] if c["name"] == "kmsd"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in kmsd, f"kmsd has no {probe}"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in sts["spec"]["selector"]["matchLabels"].items())
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    assert sts["spec"]["serviceName"] in services, "the StatefulSet's serviceName is not rendered"
    peers = services[sts["spec"]["serviceName"]]
    assert peers["spec"]["clusterIP"] == "None" and peers["spec"]["publishNotReadyAddresses"]
    for service in services.values():
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items()), \
            f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, \
                f"Service {service['metadata']['name']} targets unknown port {port['targetPort']}"
    rendered = {(o["kind"], o["metadata"]["name"]) for o in objs}
    config = volumes["config"].get("configMap", {}).get("name") or volumes["config"]["secret"]["secretName"]
    assert ("ConfigMap", config) in rendered or ("Secret", config) in rendered, "config volume names nothing rendered"
    if values.get("tls", {}).get("enabled"):
        secret = volumes["tls"]["secret"]["secretName"]
        for cert in by_kind(objects, "Certificate"):
            assert cert["spec"]["secretName"] == secret, "Certificate and tls volume disagree"
        exec_probe = kmsd["readinessProbe"]["exec"]["command"]
        assert "health" in exec_probe and "/etc/kms/tls/ca.crt" in exec_probe
    for monitor in by_kind(objects, "ServiceMonitor"):
        selected = [s for s in services.values()
                    if all(s["metadata"]["labels"].get(k) == v
                           for k, v in monitor["spec"]["selector"]["matchLabels"].items())]
        assert selected, "the ServiceMonitor selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            assert any(p["name"] == endpoint["port"] for s in selected for p in s["spec"]["ports"])
    for policy in by_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                assert port["port"] in container_ports, f"NetworkPolicy names unknown port {port['port']}"


def check_config(objects, values):
    """The rendered kmsd.toml carries what kmsd needs for these values."""
    config = kmsd_toml(objects)
    assert config["node_id_from_hostname"] is True
    assert config["region"] == values.get("region", "eu-central-1")
    members = values.get("initialMembers", 3)
    assert sorted(config["initial_members"]) == [str(i) for i in range(1, members + 1)]
    assert len(config["join"]) == members
    assert all(addr.endswith(":8301") for addr in config["initial_members"].values())
    tls = values.get("tls", {}).get("enabled", False)
    assert ("tls" in config) == tls and config.get("allow_insecure_plaintext", False) == (not tls)
    provider = values.get("rootKey", {}).get("provider", "file")
    assert ("root_key" in config) == (provider != "file")
    assert ("root_key_file" in config) == (provider == "file")
    previous = values.get("rootKey", {}).get("previous", [])
    rendered_previous = config.get("previous_root_keys", [])
    assert len(rendered_previous) == len(previous), "every previous root key is in kmsd.toml"
    assert all(p["provider"] == provider for p in rendered_previous)
    assert set(config.get("regions", {})) == set(values.get("regions", {}))
    assert ("aws_listen" in config) == values.get("aws", {}).get("enabled", False)
    (sts,) = by_kind(objects, "StatefulSet")
    (kmsd,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in kmsd["env"]}
    if provider == "env":
        assert all(f"KMS_PREVIOUS_ROOT_KEY_{i}" in env for i in range(len(previous)))
    if provider == "file":
        (copy,) = sts["spec"]["template"]["spec"]["initContainers"]
        copied = [arg for arg in copy["command"] if arg.startswith("/etc/kms/root-key-secret/")]
        assert len(copied) == 1 + len(previous), "the init container copies every root key"
    assert env["KMSD_RAFT_ADVERTISE"].startswith("$(POD_NAME).")
    if config.get("aws_credentials"):
        kinds = {o["kind"] for o in by_kind(objects, "Secret") if "kmsd.toml" in o.get("stringData", {})}
        assert kinds == {"Secret"}, "AWS secret access keys must not be rendered into a ConfigMap"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    chart_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "helm", "kms")
    config_dir = sys.argv[2] if len(sys.argv) > 2 else None
    value_files = sorted(glob.glob(os.path.join(chart_dir, "ci", "*.yaml")))
    checks = Checks()

    def enough_value_sets():
        assert len(value_files) >= 6, f"only {value_files}"

    checks.check("value sets exist", enough_value_sets)
    with helm_python.Chart.load(chart_dir) as chart:
        for value_file in value_files:
            name = os.path.basename(value_file)
            with open(value_file) as f:
                values = yaml.safe_load(f) or {}

            def lint(values=values):
                result = helm_python.lint(chart_dir, values, strict=True, namespace=NAMESPACE,
                                          kube_version=KUBE_VERSIONS[0])
                problems = [m for m in result["messages"] if m["severity"] >= 2] + result["errors"]
                assert not problems, problems

            checks.check(f"{name}: helm lint --strict", lint)
            rendered = []

            def renders(values=values, rendered=rendered):
                objects, notes = render(chart, values)
                assert notes and all(n.strip() for n in notes.values()), "empty NOTES.txt"
                rendered.append(objects)

            checks.check(f"{name}: renders, with NOTES.txt", renders)
            if not rendered:
                continue
            objects = rendered[0]
            checks.check(f"{name}: every object valid for Kubernetes {', '.join(KUBE_VERSIONS)}",
                         lambda objects=objects: validate_objects(objects))
            checks.check(f"{name}: references between objects",
                         lambda objects=objects, values=values: check_references(objects, values))
            checks.check(f"{name}: kmsd.toml", lambda objects=objects, values=values: check_config(objects, values))
            if config_dir:
                with open(os.path.join(config_dir, name.replace(".yaml", ".toml")), "w") as f:
                    f.write(kmsd_toml_text(objects))

        for what, values, reason in BROKEN:
            def refused(values=values, reason=reason):
                try:
                    chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                except helm_python.HelmError as err:
                    assert reason in str(err), f"refused, but the reason does not name {reason}: {err}"
                else:
                    raise AssertionError("rendered")
            checks.check(f"refused: {what}", refused)

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
