"""A varied workload against kmsd's AWS endpoint for the audit test (tests/tests/audit.rs).

Run with the same KMS_AWS_* variables as boto3_suite.py. Every request's id (x-amzn-RequestId,
successes and failures alike, including one refused by SigV4 and one unsigned) and every secret
the workload handled (plaintexts, a data key, imported key material; base64) is
printed as one JSON object on the last line, after `OK`.
"""
import base64
import http.client
import json
import os
import urllib.parse

import boto3
import botocore.config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ENDPOINT = os.environ["KMS_AWS_ENDPOINT"]
REGION = os.environ["KMS_AWS_REGION"]
ACCESS_KEY = os.environ["KMS_AWS_ACCESS_KEY_ID"]
SECRET = os.environ["KMS_AWS_SECRET_ACCESS_KEY"]


def client(secret):
    # No retries: every request sent is one request id.
    return boto3.client(
        "kms",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


kms = client(SECRET)
request_ids = []
secrets = []


def call(method, expect_error=None, via=None, **params):
    """Calls `method` (on `via`, else the good client); returns the response or error response."""
    try:
        response = getattr(via or kms, method)(**params)
        assert expect_error is None, f"{method} should have failed with {expect_error}"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code == expect_error, f"{method}: {code}, expected {expect_error}"
        response = e.response
    request_ids.append(response["ResponseMetadata"]["RequestId"])
    return response


def secret(value):
    secrets.append(base64.b64encode(value).decode())
    return value


key = call("create_key", Description="audit aws")["KeyMetadata"]["KeyId"]
context = {"purpose": "audit-e2e", "via": "aws"}
plaintext = secret(b"aws plaintext for the audit test 5f3a91")
blob = call("encrypt", KeyId=key, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]
assert call("decrypt", CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == plaintext
call("decrypt", "InvalidCiphertextException", CiphertextBlob=blob)
data_key = call("generate_data_key", KeyId=key, KeySpec="AES_256", EncryptionContext=context)
secret(data_key["Plaintext"])
call("describe_key", "NotFoundException", KeyId="alias/audit-no-such-alias")

# Imported key material (BYOK): the material must never reach the log either.
external = call("create_key", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
params = call(
    "get_parameters_for_import",
    KeyId=external,
    WrappingAlgorithm="RSAES_OAEP_SHA_256",
    WrappingKeySpec="RSA_2048",
)
material = secret(os.urandom(32))
wrapping_key = serialization.load_der_public_key(params["PublicKey"])
wrapped = wrapping_key.encrypt(
    material, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
)
call(
    "import_key_material",
    KeyId=external,
    ImportToken=params["ImportToken"],
    EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
imported_plaintext = secret(b"encrypted under imported material 77d0")
call("encrypt", KeyId=external, Plaintext=imported_plaintext)

# A forged signature: refused before any operation runs, and still recorded.
call("list_keys", "InvalidSignatureException", via=client("not-the-secret"))

# An unsigned request, sent raw: its id is in the x-amzn-RequestId header.
host = urllib.parse.urlsplit(ENDPOINT).netloc
conn = http.client.HTTPConnection(host, timeout=30)
conn.request(
    "POST",
    "/",
    body=b"{}",
    headers={"X-Amz-Target": "TrentService.ListAliases", "Content-Type": "application/x-amz-json-1.1"},
)
answer = conn.getresponse()
answer.read()
assert answer.status >= 400, answer.status
request_ids.append(answer.getheader("x-amzn-RequestId"))

print("OK")
print(json.dumps({"request_ids": request_ids, "secrets": secrets, "key": key}))
