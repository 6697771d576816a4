"""The AWS Encryption SDK for Python against kmsd's AWS endpoint: a 1 MiB message with an
encryption context is encrypted under a kms key (GenerateDataKey through the endpoint) and
decrypted again (Decrypt through the endpoint), with the default committing, signing suite.

The SDK has no endpoint parameter; AWS_ENDPOINT_URL_KMS points its boto3 clients at the server
(asserted below before use). Run by tests/tests/aws_encryption_sdk.rs.
"""
import os

os.environ["AWS_ENDPOINT_URL_KMS"] = os.environ["KMS_AWS_ENDPOINT"]
os.environ["AWS_ACCESS_KEY_ID"] = os.environ["KMS_AWS_ACCESS_KEY_ID"]
os.environ["AWS_SECRET_ACCESS_KEY"] = os.environ["KMS_AWS_SECRET_ACCESS_KEY"]
os.environ["AWS_DEFAULT_REGION"] = os.environ["KMS_AWS_REGION"]

import boto3
import botocore.session
import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy

session = botocore.session.Session()
probe = boto3.session.Session(botocore_session=session).client("kms", region_name=os.environ["KMS_AWS_REGION"])
assert probe.meta.endpoint_url.rstrip("/") == os.environ["KMS_AWS_ENDPOINT"].rstrip("/"), probe.meta.endpoint_url
key_arn = probe.create_key(Description="encryption sdk")["KeyMetadata"]["Arn"]

client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)

plaintext = os.urandom(1024 * 1024)
context = {"purpose": "e2e", "tenant": "42"}
ciphertext, header = client.encrypt(source=plaintext, key_provider=provider, encryption_context=context)
assert plaintext not in ciphertext and len(ciphertext) > len(plaintext)
assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [key_arn], header.encrypted_data_keys
for k, v in context.items():
    assert header.encryption_context[k] == v

decrypted, decrypt_header = client.decrypt(source=ciphertext, key_provider=provider)
assert decrypted == plaintext
for k, v in context.items():
    assert decrypt_header.encryption_context[k] == v

# A tampered message must not decrypt.
tampered = bytearray(ciphertext)
tampered[len(tampered) // 2] ^= 1
try:
    client.decrypt(source=bytes(tampered), key_provider=provider)
except Exception as e:  # the SDK raises its own error types
    print(f"ok tampered message refused: {type(e).__name__}")
else:
    raise AssertionError("a tampered message decrypted")

print(f"OK encrypted and decrypted {len(plaintext)} bytes under {key_arn}")
