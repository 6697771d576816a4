"""A Kubernetes KMS v2 client, as kube-apiserver is one, against kmsd's plugin socket.

The gRPC stubs are generated at run time, with grpcio-tools, into a temporary directory from the
upstream `k8s.io/kms/apis/v2/api.proto`. No package registry ships that file, so the one used is
the verbatim copy under proto/upstream/, and this script refuses to run unless its SHA-256 equals
the hash of the upstream file (kubernetes/kms tag v0.36.0), so the stubs cannot silently follow an
edit of our copy.

Run by tests/tests/kubernetes_plugin.rs in phases against one node (state is kept in a JSON
file between phases):
  before  Status is healthy; Encrypt seeds; each Decrypts.
  after   (the test has rotated the backing key) Status reports a new key_id; Encrypt more
          seeds; every seed from before and after Decrypts; the upstream limits are enforced.
  restart (the node was killed and restarted) Status is healthy with the same key_id; every
          seed still Decrypts.

Environment: KMS_PLUGIN_SOCKET (absolute path), KMS_V2_PROTO (the api.proto file),
KMS_V2_STATE (the JSON state file). Prints `OK ...` as its last line on success.
"""
import base64
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile

import grpc

UPSTREAM_SHA256 = "707c98c686bfcfa9c068263bc40eb97b95a194fdf0aa2d8d7ddb60a147b8cd1c"
SEEDS_PER_PHASE = 5
TIMEOUT = 10  # seconds per call; kube-apiserver's default is 3

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def generate_stubs(proto):
    """api_pb2 and api_pb2_grpc, generated now from the upstream file, in a temp dir."""
    with open(proto, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(digest == UPSTREAM_SHA256, f"{proto} is not the upstream file: sha256 {digest}")
    out = tempfile.mkdtemp(prefix="kms-v2-stubs-")
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-I{os.path.dirname(proto)}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.basename(proto),
        ],
        check=True,
    )
    sys.path.insert(0, out)
    api_pb2 = importlib.import_module("api_pb2")
    api_pb2_grpc = importlib.import_module("api_pb2_grpc")
    service = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"]
    check(service.full_name == "v2.KeyManagementService", service.full_name)
    return api_pb2, api_pb2_grpc


def error_code(call, *args):
    """The gRPC status code a call fails with (None if it succeeds)."""
    try:
        call(*args, timeout=TIMEOUT)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return None, None


class Plugin:
    def __init__(self, socket, pb, pb_grpc):
        self.pb = pb
        # kube-apiserver (grpc-go) sends `:authority: localhost` on its unix socket; grpc C-core
        # would send the socket path, which is not a valid HTTP/2 authority and is refused.
        self.channel = grpc.insecure_channel(f"unix://{socket}", options=[("grpc.default_authority", "localhost")])
        self.stub = pb_grpc.KeyManagementServiceStub(self.channel)
        self.uid = 0

    def next_uid(self):
        self.uid += 1
        return f"kms-v2-client-{self.uid}"

    def status(self):
        response = self.stub.Status(self.pb.StatusRequest(), timeout=TIMEOUT, wait_for_ready=True)
        check(response.version == "v2", f"version {response.version!r}")
        check(response.healthz == "ok", f"healthz {response.healthz!r}")
        check(0 < len(response.key_id.encode()) <= 1024, f"key_id {response.key_id!r}")
        return response.key_id

    def encrypt(self, plaintext):
        return self.stub.Encrypt(self.pb.EncryptRequest(plaintext=plaintext, uid=self.next_uid()), timeout=TIMEOUT)

    def decrypt(self, ciphertext, key_id, annotations=None):
        request = self.pb.DecryptRequest(
            ciphertext=ciphertext, key_id=key_id, uid=self.next_uid(), annotations=annotations or {}
        )
        return self.stub.Decrypt(request, timeout=TIMEOUT).plaintext

    def seal_seeds(self, key_id, count):
        """Encrypts `count` fresh 32-byte seeds, checks the answers as kube-apiserver does."""
        sealed = []
        for _ in range(count):
            seed = os.urandom(32)
            response = self.encrypt(seed)
            check(response.key_id == key_id, f"Encrypt key_id {response.key_id!r} != Status key_id {key_id!r}")
            check(0 < len(response.ciphertext) <= 1024, f"ciphertext of {len(response.ciphertext)} bytes")
            check(len(response.annotations) == 0, "no annotations expected")
            check(self.decrypt(response.ciphertext, response.key_id) == seed, "round trip")
            sealed.append({"seed": seed.hex(), "ciphertext": base64.b64encode(response.ciphertext).decode(),
                           "key_id": response.key_id})
        check(len({s["ciphertext"] for s in sealed}) == count, "distinct ciphertexts")
        return sealed

    def open_all(self, sealed):
        for s in sealed:
            plaintext = self.decrypt(base64.b64decode(s["ciphertext"]), s["key_id"])
            check(plaintext.hex() == s["seed"], f"seed sealed under {s['key_id']} decrypts")


def check_limits(plugin, state):
    """The upstream contract's limits, and ciphertexts that are not what their key_id says."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    newest = state["sealed"][-1]
    oldest = state["sealed"][0]
    ciphertext = base64.b64decode(newest["ciphertext"])
    key_id = newest["key_id"]

    for plaintext, why in [(b"", "empty"), (b"x" * 1000, "ciphertext over 1 KiB"), (b"x" * 5000, "over 4 KiB")]:
        code, details = error_code(plugin.stub.Encrypt, plugin.pb.EncryptRequest(plaintext=plaintext, uid="limit"))
        check(code == invalid, f"Encrypt of a {len(plaintext)}-byte plaintext ({why}): {code} {details}")
    code, details = error_code(plugin.stub.Encrypt, plugin.pb.EncryptRequest(plaintext=b"y" * 512, uid="fits"))
    check(code is None, f"a 512-byte plaintext still fits: {code} {details}")

    def decrypt_code(ciphertext, key_id, annotations=None):
        request = plugin.pb.DecryptRequest(ciphertext=ciphertext, key_id=key_id, uid="limit",
                                           annotations=annotations or {})
        return error_code(plugin.stub.Decrypt, request)

    cases = [
        ("ciphertext over 1 KiB", decrypt_code(ciphertext + b"\0" * 1024, key_id)),
        ("empty ciphertext", decrypt_code(b"", key_id)),
        ("key_id over 1 KiB", decrypt_code(ciphertext, key_id + "x" * 1024)),
        ("empty key_id", decrypt_code(ciphertext, "")),
        ("key_id not issued by the plugin", decrypt_code(ciphertext, "alias/kubernetes")),
        ("annotation key not a domain name", decrypt_code(ciphertext, key_id, {"not_a_domain": b"x"})),
        ("annotations over 32 KiB", decrypt_code(ciphertext, key_id, {"kms.example.io": b"x" * (32 * 1024)})),
        ("old ciphertext under the new key_id",
         decrypt_code(base64.b64decode(oldest["ciphertext"]), key_id)),
        ("tampered ciphertext", decrypt_code(ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), key_id)),
    ]
    for what, (code, details) in cases:
        check(code == invalid, f"Decrypt with {what}: {code} {details}")
    # Annotations within the rules are accepted (and ignored).
    fine = plugin.decrypt(ciphertext, key_id, {"kms.example.io": b"x" * 100, "v.example.io.": b""})
    check(fine.hex() == newest["seed"], "well-formed annotations are accepted")


def main():
    phase = sys.argv[1]
    pb, pb_grpc = generate_stubs(os.environ["KMS_V2_PROTO"])
    plugin = Plugin(os.environ["KMS_PLUGIN_SOCKET"], pb, pb_grpc)
    state_file = os.environ["KMS_V2_STATE"]
    state = {"key_ids": [], "sealed": []}
    if phase != "before":
        with open(state_file) as f:
            state = json.load(f)

    key_id = plugin.status()
    if phase == "before":
        state["key_ids"].append(key_id)
        state["sealed"] += plugin.seal_seeds(key_id, SEEDS_PER_PHASE)
    elif phase == "after":
        check(key_id not in state["key_ids"], f"key_id {key_id!r} changed after the rotation")
        state["key_ids"].append(key_id)
        state["sealed"] += plugin.seal_seeds(key_id, SEEDS_PER_PHASE)
        plugin.open_all(state["sealed"])
        check_limits(plugin, state)
    elif phase == "restart":
        check(key_id == state["key_ids"][-1], f"key_id {key_id!r} kept across the restart")
        plugin.open_all(state["sealed"])
    else:
        raise SystemExit(f"unknown phase {phase}")

    with open(state_file, "w") as f:
        json.dump(state, f)
    print(f"OK {phase}: {checks} checks, key_ids {' -> '.join(state['key_ids'])}, "
          f"{len(state['sealed'])} seeds decrypt")


if __name__ == "__main__":
    main()
