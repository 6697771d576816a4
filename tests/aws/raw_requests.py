"""Bad input and forged signatures against kmsd's AWS endpoint, signed by botocore's own SigV4
signer (botocore.auth.SigV4Auth / SigV4QueryAuth) and sent with http.client, so the bytes on the
wire are exactly what this script chooses.

Run by tests/tests/aws_bad_input.rs with the same KMS_AWS_* variables as boto3_suite.py.
Also checks every one of the 54 operations of botocore's KMS model: `{}` is answered with a
ValidationException naming exactly the model's required members (or, for operations without
required members, is not refused as malformed).
"""
import datetime
import http.client
import json
import os
import sys
import urllib.parse
from unittest import mock

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ENDPOINT = os.environ["KMS_AWS_ENDPOINT"]
REGION = os.environ["KMS_AWS_REGION"]
GOOD = Credentials(os.environ["KMS_AWS_ACCESS_KEY_ID"], os.environ["KMS_AWS_SECRET_ACCESS_KEY"])
HOST = urllib.parse.urlsplit(ENDPOINT).netloc
checks = 0


def signed(target, body, creds=GOOD, when=None, query_auth=False):
    """A signed request: (path, headers) as botocore produces them."""
    request = AWSRequest(
        method="POST",
        url=ENDPOINT + "/",
        data=body,
        headers={"X-Amz-Target": f"TrentService.{target}", "Content-Type": "application/x-amz-json-1.1"},
    )
    signer = (botocore.auth.SigV4QueryAuth if query_auth else botocore.auth.SigV4Auth)(creds, "kms", REGION)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    prepared = request.prepare()
    path = urllib.parse.urlsplit(prepared.url)
    return (path.path + ("?" + path.query if path.query else "")), dict(prepared.headers), prepared.body


def send(path, headers, body):
    conn = http.client.HTTPConnection(HOST, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), raw
    finally:
        conn.close()


def expect(what, status, code, path, headers, body, message_contains=None):
    global checks
    got_status, got_headers, raw = send(path, headers, body)
    document = json.loads(raw) if raw else {}
    got_code = document.get("__type")
    assert got_code == code, f"{what}: expected {code}, got {got_code} / HTTP {got_status}: {raw[:300]!r}"
    assert got_status == status, f"{what}: expected HTTP {status}, got {got_status}"
    assert isinstance(document.get("message"), str), f"{what}: no message: {raw!r}"
    lowered = {k.lower(): v for k, v in got_headers.items()}
    assert lowered.get("content-type") == "application/x-amz-json-1.1", f"{what}: {got_headers}"
    assert lowered.get("x-amzn-requestid"), f"{what}: no x-amzn-RequestId"
    if message_contains:
        for needle in message_contains:
            assert needle in document["message"], f"{what}: {needle!r} not in {document['message']!r}"
    checks += 1
    print(f"ok {what}: HTTP {got_status} {code}", flush=True)
    return document


def ok(what, target, body, **kwargs):
    global checks
    status, _, raw = send(*signed(target, body, **kwargs))
    assert status == 200, f"{what}: HTTP {status}: {raw[:300]!r}"
    checks += 1
    print(f"ok {what}: HTTP 200", flush=True)
    return json.loads(raw)


# ---- the endpoint works (header and query-string signatures) ----
ok("signed ListKeys", "ListKeys", b"{}")
ok("presigned (query-string) ListKeys", "ListKeys", b"", query_auth=True)

# ---- malformed input ----
expect("malformed JSON", 400, "SerializationException", *signed("DescribeKey", b'{"KeyId": '))
expect("JSON array body", 400, "SerializationException", *signed("DescribeKey", b'["KeyId"]'))
expect("not UTF-8", 400, "SerializationException", *signed("DescribeKey", b"\xff\xfe{}"))
expect("number for a string", 400, "SerializationException", *signed("DescribeKey", b'{"KeyId": 5}'))
expect("string for an integer", 400, "SerializationException", *signed("ListKeys", b'{"Limit": "5"}'))
expect("fraction for an integer", 400, "SerializationException", *signed("ListKeys", b'{"Limit": 1.5}'))
expect("bad base64 blob", 400, "SerializationException",
       *signed("Encrypt", b'{"KeyId": "k", "Plaintext": "***"}'))
expect("object for a list", 400, "SerializationException",
       *signed("UntagResource", b'{"KeyId": "k", "TagKeys": {"a": 1}}'))
expect("unknown enum value", 400, "ValidationException",
       *signed("CreateKey", b'{"KeySpec": "AES_999"}'), message_contains=["'AES_999'", "keySpec"])
expect("missing required members", 400, "ValidationException", *signed("Encrypt", b"{}"),
       message_contains=["2 validation errors", "'keyId'", "'plaintext'"])
expect("missing nested member", 400, "ValidationException",
       *signed("TagResource", b'{"KeyId": "k", "Tags": [{"TagKey": "a"}]}'),
       message_contains=["tags.1.member.tagValue"])
expect("unknown target", 400, "UnknownOperationException", *signed("Frobnicate", b"{}"))
path, headers, body = signed("ListKeys", b"{}")
headers["X-Amz-Target"] = "KMS.ListKeys"
expect("foreign target prefix (re-signed)", 400, "InvalidSignatureException", path, headers, body)
mrk = ok("create a multi-Region key", "CreateKey", b'{"MultiRegion": true}')["KeyMetadata"]["KeyId"]
expect("ReplicateKey to a region the deployment lacks", 400, "ValidationException",
       *signed("ReplicateKey", json.dumps({"KeyId": mrk, "ReplicaRegion": "eu-west-9"}).encode()),
       message_contains=["eu-west-9", "[regions.eu-west-9]"])
big = b'{"KeyId": "' + b"k" * (300 * 1024) + b'"}'
expect("oversized body (300 KiB)", 413, "ValidationException", *signed("DescribeKey", big))

# ---- forged or broken authentication: nothing runs ----
marker_key = ok("create a key to attack", "CreateKey", b'{"Description": "target"}')["KeyMetadata"]["KeyId"]
attack = json.dumps({"KeyId": marker_key, "PendingWindowInDays": 7}).encode()
expect("wrong secret", 400, "InvalidSignatureException",
       *signed("ScheduleKeyDeletion", attack, creds=Credentials(GOOD.access_key, "wrong-secret")))
path, headers, _ = signed("ScheduleKeyDeletion", b'{"KeyId": "11111111-2222-3333-4444-555555555555"}')
expect("tampered body", 400, "InvalidSignatureException", path, headers, attack)
path, headers, body = signed("DescribeKey", json.dumps({"KeyId": marker_key}).encode())
headers["X-Amz-Target"] = "TrentService.ScheduleKeyDeletion"
expect("tampered target", 400, "InvalidSignatureException", path, headers, attack)
old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
expect("expired signature (10 min old)", 400, "InvalidSignatureException",
       *signed("ScheduleKeyDeletion", attack, when=old), message_contains=["Signature expired"])
future = datetime.datetime.utcnow() + datetime.timedelta(minutes=20)
expect("signature from the future", 400, "InvalidSignatureException", *signed("ScheduleKeyDeletion", attack, when=future))
expect("unknown access key", 400, "UnrecognizedClientException",
       *signed("ScheduleKeyDeletion", attack, creds=Credentials("AKIDUNKNOWN", GOOD.secret_key)))
path, headers, body = signed("ScheduleKeyDeletion", attack)
del headers["Authorization"]
expect("no authentication", 403, "MissingAuthenticationTokenException", path, headers, body)
headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" + GOOD.access_key
expect("incomplete Authorization", 400, "IncompleteSignatureException", path, headers, body)
other_region = botocore.auth.SigV4Auth(GOOD, "kms", "us-east-1")
request = AWSRequest(method="POST", url=ENDPOINT + "/", data=attack,
                     headers={"X-Amz-Target": "TrentService.ScheduleKeyDeletion", "Content-Type": "application/x-amz-json-1.1"})
other_region.add_auth(request)
prepared = request.prepare()
expect("signed for another region", 400, "InvalidSignatureException", "/", dict(prepared.headers), prepared.body)
state = ok("the attacked key is untouched", "DescribeKey", json.dumps({"KeyId": marker_key}).encode())
assert state["KeyMetadata"]["KeyState"] == "Enabled", state

# ---- every operation of botocore's model: required members as the model says ----
model = botocore.session.get_session().get_service_model("kms")
assert len(model.operation_names) >= 54, model.operation_names
# Where kms.proto deliberately relaxes the model (service principals as alternatives).
RELAXED = {"CreateGrant", "ListRetirableGrants"}
for name in model.operation_names:
    shape = model.operation_model(name).input_shape
    required = sorted(shape.required_members) if shape is not None else []
    status, _, raw = send(*signed(name, b"{}"))
    document = json.loads(raw) if raw else {}
    code = document.get("__type")
    assert code not in ("SerializationException", "UnknownOperationException", "KMSInternalException"), (name, raw)
    if required and name not in RELAXED:
        assert status == 400 and code == "ValidationException", (name, status, raw)
        mentioned = sorted(m for m in required if f"'{m[0].lower()}{m[1:]}'" in document["message"])
        assert mentioned == required, f"{name}: model requires {required}, message: {document['message']}"
        count = document["message"].split(" ")[0]
        assert count == str(len(required)), f"{name}: {document['message']}"
    checks += 1
print(f"ok all {len(model.operation_names)} model operations validate their required members", flush=True)

# ---- still serving ----
ok("still serving after all of the above", "ListKeys", b"{}")
print(f"OK {checks} checks")
