"""Drives kmsd's AWS endpoint with boto3 through every implemented operation and checks the values.

Run by tests/tests/aws_boto3.rs with KMS_AWS_ENDPOINT, KMS_AWS_REGION, KMS_AWS_ACCESS_KEY_ID and
KMS_AWS_SECRET_ACCESS_KEY set. Prints one line per checked operation and `OK <n> operations` at
the end; any failed check raises (non-zero exit).
"""
import base64
import datetime
import json
import os
import re
import sys
import time

import boto3
import botocore.config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KMS_AWS_ENDPOINT"]
REGION = os.environ["KMS_AWS_REGION"]
ACCESS_KEY = os.environ["KMS_AWS_ACCESS_KEY_ID"]
SECRET = os.environ["KMS_AWS_SECRET_ACCESS_KEY"]

# No retries: a 5xx answer must show up here, not be retried away.
kms = boto3.client(
    "kms",
    endpoint_url=ENDPOINT,
    region_name=REGION,
    aws_access_key_id=ACCESS_KEY,
    aws_secret_access_key=SECRET,
    config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ARN = re.compile(r"^arn:aws:kms:" + re.escape(REGION) + r":(\d{12}):key/([0-9a-f-]{36})$")
seen = set()


def ok(operation, detail=""):
    seen.add(operation)
    print(f"ok {operation} {detail}".rstrip(), flush=True)


def expect_error(code, fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code, f"{fn.__name__}: expected {code}, got {got} ({e.response['Error'].get('Message')})"
        assert 400 <= status < 500, f"{fn.__name__}: {code} came with HTTP {status}"
        assert e.response["ResponseMetadata"].get("RequestId"), "no x-amzn-RequestId"
        return e
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded, expected {code}")


def recent(ts, slack=300):
    now = datetime.datetime.now(datetime.timezone.utc)
    assert isinstance(ts, datetime.datetime), ts
    assert abs((now - ts).total_seconds()) < slack, f"{ts} is not close to {now}"


def bare_or_arn(value, key_id):
    """protocols.md §2.2: AWS answers the bare key id (not the ARN) in GetKeyRotationStatus,
    RotateKeyOnDemand and ListKeyRotations."""
    return value == key_id


def arn_of(key_id):
    m = ARN.match(key_id)
    assert m, f"{key_id!r} is not a key ARN of region {REGION}"
    return m.group(2)


# ---- keys ----
created = kms.create_key(Description="boto3 suite", Tags=[{"TagKey": "team", "TagValue": "kms"}])
meta = created["KeyMetadata"]
key = meta["KeyId"]
assert UUID.match(key), key
assert arn_of(meta["Arn"]) == key
account = ARN.match(meta["Arn"]).group(1)
assert meta["AWSAccountId"] == account
assert meta["Description"] == "boto3 suite"
assert meta["Enabled"] is True
assert meta["KeyState"] == "Enabled"
assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
assert meta["Origin"] == "AWS_KMS"
assert meta["KeyManager"] == "CUSTOMER"
assert meta["MultiRegion"] is False
assert "DeletionDate" not in meta and "MacAlgorithms" not in meta
recent(meta["CreationDate"])
ok("CreateKey", key)

hmac_meta = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
hmac_key = hmac_meta["KeyId"]
assert hmac_meta["KeySpec"] == "HMAC_256" and hmac_meta["MacAlgorithms"] == ["HMAC_SHA_256"]
assert "EncryptionAlgorithms" not in hmac_meta
expect_error("ValidationException", kms.create_key, KeySpec="HMAC_999")

described = kms.describe_key(KeyId=key)["KeyMetadata"]
assert described["KeyId"] == key and described["Arn"] == meta["Arn"]
assert described["CreationDate"] == meta["CreationDate"]
assert kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]["KeyId"] == key
expect_error("NotFoundException", kms.describe_key, KeyId="11111111-2222-3333-4444-555555555555")
ok("DescribeKey")

listed = kms.list_keys()
assert listed["Truncated"] is False and "NextMarker" not in listed
entries = {k["KeyId"]: k["KeyArn"] for k in listed["Keys"]}
assert entries.get(key) == meta["Arn"] and hmac_key in entries, entries
page = kms.list_keys(Limit=1)
assert len(page["Keys"]) == 1 and page["Truncated"] is True and page["NextMarker"]
rest = kms.list_keys(Marker=page["NextMarker"])
assert {k["KeyId"] for k in page["Keys"] + rest["Keys"]} == set(entries)
paged = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}) for k in p["Keys"]]
assert sorted(paged) == sorted(entries), paged
expect_error("ValidationException", kms.list_keys, Limit=1001)
ok("ListKeys", f"{len(entries)} keys, paginated")

kms.update_key_description(KeyId=key, Description="renamed")
assert kms.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "renamed"
ok("UpdateKeyDescription")

kms.disable_key(KeyId=key)
m = kms.describe_key(KeyId=key)["KeyMetadata"]
assert m["KeyState"] == "Disabled" and m["Enabled"] is False
expect_error("DisabledException", kms.encrypt, KeyId=key, Plaintext=b"x")
ok("DisableKey")
kms.enable_key(KeyId=key)
m = kms.describe_key(KeyId=key)["KeyMetadata"]
assert m["KeyState"] == "Enabled" and m["Enabled"] is True
ok("EnableKey")

doomed = kms.create_key()["KeyMetadata"]["KeyId"]
scheduled = kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
assert arn_of(scheduled["KeyId"]) == doomed
assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
days = (scheduled["DeletionDate"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
assert 6.9 < days <= 7.01, days
m = kms.describe_key(KeyId=doomed)["KeyMetadata"]
assert m["KeyState"] == "PendingDeletion" and m["DeletionDate"] == scheduled["DeletionDate"]
expect_error("KMSInvalidStateException", kms.encrypt, KeyId=doomed, Plaintext=b"x")
expect_error("ValidationException", kms.schedule_key_deletion, KeyId=key, PendingWindowInDays=3)
ok("ScheduleKeyDeletion")
cancelled = kms.cancel_key_deletion(KeyId=doomed)
assert arn_of(cancelled["KeyId"]) == doomed
m = kms.describe_key(KeyId=doomed)["KeyMetadata"]
assert m["KeyState"] == "Disabled" and "DeletionDate" not in m
ok("CancelKeyDeletion")

# ---- aliases ----
kms.create_alias(AliasName="alias/boto3-app", TargetKeyId=key)
aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
a = aliases["alias/boto3-app"]
assert a["TargetKeyId"] == key
assert a["AliasArn"] == f"arn:aws:kms:{REGION}:{account}:alias/boto3-app"
recent(a["CreationDate"])
expect_error("AlreadyExistsException", kms.create_alias, AliasName="alias/boto3-app", TargetKeyId=key)
expect_error("ValidationException", kms.create_alias, AliasName="no-prefix", TargetKeyId=key)
assert kms.describe_key(KeyId="alias/boto3-app")["KeyMetadata"]["KeyId"] == key
ok("CreateAlias")
by_key = kms.list_aliases(KeyId=key)
assert [x["AliasName"] for x in by_key["Aliases"]] == ["alias/boto3-app"] and by_key["Truncated"] is False
assert kms.list_aliases(KeyId=hmac_key)["Aliases"] == []
ok("ListAliases")
kms.update_alias(AliasName="alias/boto3-app", TargetKeyId=doomed)
kms.enable_key(KeyId=doomed)
assert kms.describe_key(KeyId="alias/boto3-app")["KeyMetadata"]["KeyId"] == doomed
kms.update_alias(AliasName="alias/boto3-app", TargetKeyId=key)
ok("UpdateAlias")

# ---- tags ----
kms.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "test"}, {"TagKey": "team", "TagValue": "crypto"}])
tags = kms.list_resource_tags(KeyId=key)
assert tags["Tags"] == [{"TagKey": "env", "TagValue": "test"}, {"TagKey": "team", "TagValue": "crypto"}], tags
assert tags["Truncated"] is False
ok("TagResource")
first = kms.list_resource_tags(KeyId=key, Limit=1)
assert first["Tags"] == [{"TagKey": "env", "TagValue": "test"}] and first["Truncated"] is True
ok("ListResourceTags")
kms.untag_resource(KeyId=key, TagKeys=["team"])
assert kms.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "env", "TagValue": "test"}]
ok("UntagResource")

# ---- crypto ----
context = {"tenant": "42", "purpose": "boto3"}
enc = kms.encrypt(KeyId="alias/boto3-app", Plaintext=b"attack at dawn", EncryptionContext=context)
assert arn_of(enc["KeyId"]) == key and enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
blob = enc["CiphertextBlob"]
assert isinstance(blob, bytes) and len(blob) > 14 + 28 and b"attack at dawn" not in blob
expect_error("ValidationException", kms.encrypt, KeyId=key, Plaintext=b"x" * 4097)
ok("Encrypt")
dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
assert dec["Plaintext"] == b"attack at dawn" and arn_of(dec["KeyId"]) == key
assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, EncryptionContext={"tenant": "43"})
expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob[:-1] + bytes([blob[-1] ^ 1]), EncryptionContext=context)
expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=context, KeyId=doomed)
ok("Decrypt")
re_enc = kms.re_encrypt(
    CiphertextBlob=blob,
    SourceEncryptionContext=context,
    DestinationKeyId=doomed,
    DestinationEncryptionContext={"moved": "yes"},
)
assert arn_of(re_enc["SourceKeyId"]) == key and arn_of(re_enc["KeyId"]) == doomed
assert re_enc["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT" == re_enc["DestinationEncryptionAlgorithm"]
assert kms.decrypt(CiphertextBlob=re_enc["CiphertextBlob"], EncryptionContext={"moved": "yes"})["Plaintext"] == b"attack at dawn"
ok("ReEncrypt")

dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=context)
assert len(dk["Plaintext"]) == 32 and arn_of(dk["KeyId"]) == key
assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == dk["Plaintext"]
assert len(kms.generate_data_key(KeyId=key, NumberOfBytes=64)["Plaintext"]) == 64
assert len(kms.generate_data_key(KeyId=key, KeySpec="AES_128")["Plaintext"]) == 16
expect_error("ValidationException", kms.generate_data_key, KeyId=key, KeySpec="AES_256", NumberOfBytes=32)
ok("GenerateDataKey")
dkw = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_128")
assert "Plaintext" not in dkw and arn_of(dkw["KeyId"]) == key
assert len(kms.decrypt(CiphertextBlob=dkw["CiphertextBlob"])["Plaintext"]) == 16
ok("GenerateDataKeyWithoutPlaintext")

r1, r2 = kms.generate_random(NumberOfBytes=32)["Plaintext"], kms.generate_random(NumberOfBytes=32)["Plaintext"]
assert len(r1) == 32 and len(r2) == 32 and r1 != r2
expect_error("ValidationException", kms.generate_random, NumberOfBytes=1025)
ok("GenerateRandom")

mac = kms.generate_mac(KeyId=hmac_key, Message=b"message", MacAlgorithm="HMAC_SHA_256")
assert len(mac["Mac"]) == 32 and mac["MacAlgorithm"] == "HMAC_SHA_256" and arn_of(mac["KeyId"]) == hmac_key
assert kms.generate_mac(KeyId=hmac_key, Message=b"message", MacAlgorithm="HMAC_SHA_256")["Mac"] == mac["Mac"]
expect_error("InvalidKeyUsageException", kms.generate_mac, KeyId=hmac_key, Message=b"m", MacAlgorithm="HMAC_SHA_512")
expect_error("InvalidKeyUsageException", kms.generate_mac, KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256")
ok("GenerateMac")
v = kms.verify_mac(KeyId=hmac_key, Message=b"message", MacAlgorithm="HMAC_SHA_256", Mac=mac["Mac"])
assert v["MacValid"] is True and v["MacAlgorithm"] == "HMAC_SHA_256" and arn_of(v["KeyId"]) == hmac_key
expect_error("KMSInvalidMacException", kms.verify_mac, KeyId=hmac_key, Message=b"messagf", MacAlgorithm="HMAC_SHA_256", Mac=mac["Mac"])
ok("VerifyMac")

# ---- rotation ----
status = kms.get_key_rotation_status(KeyId=key)
assert status["KeyRotationEnabled"] is False and bare_or_arn(status["KeyId"], key)
kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
status = kms.get_key_rotation_status(KeyId=key)
assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
days = (status["NextRotationDate"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
assert 89.9 < days <= 90.01, days
expect_error("ValidationException", kms.enable_key_rotation, KeyId=key, RotationPeriodInDays=2561)
expect_error("UnsupportedOperationException", kms.enable_key_rotation, KeyId=hmac_key)
ok("EnableKeyRotation")
ok("GetKeyRotationStatus")
kms.disable_key_rotation(KeyId=key)
status = kms.get_key_rotation_status(KeyId=key)
assert status["KeyRotationEnabled"] is False and "NextRotationDate" not in status
ok("DisableKeyRotation")
rotated = kms.rotate_key_on_demand(KeyId=key)
assert bare_or_arn(rotated["KeyId"], key)
ok("RotateKeyOnDemand")
rotations = kms.list_key_rotations(KeyId=key)
assert rotations["Truncated"] is False and len(rotations["Rotations"]) == 1, rotations
entry = rotations["Rotations"][0]
assert bare_or_arn(entry["KeyId"], key) and entry["RotationType"] == "ON_DEMAND"
recent(entry["RotationDate"])
ok("ListKeyRotations")
# Old ciphertext still decrypts after rotation; new ciphertext uses the new material.
assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"attack at dawn"
new_blob = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=new_blob)["Plaintext"] == b"after"

# ---- asymmetric keys: checked with the `cryptography` package, not with kms itself ----
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
assert signer["SigningAlgorithms"] == ["ECDSA_SHA_256"] and "EncryptionAlgorithms" not in signer
pub = kms.get_public_key(KeyId=signer["KeyId"])
assert arn_of(pub["KeyId"]) == signer["KeyId"]
assert pub["KeySpec"] == "ECC_NIST_P256" and pub["KeyUsage"] == "SIGN_VERIFY"
assert pub["SigningAlgorithms"] == ["ECDSA_SHA_256"]
public_key = serialization.load_der_public_key(pub["PublicKey"])
assert isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1"
ok("GetPublicKey")
signed = kms.sign(KeyId=signer["KeyId"], Message=b"to be signed", MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
assert arn_of(signed["KeyId"]) == signer["KeyId"] and signed["SigningAlgorithm"] == "ECDSA_SHA_256"
public_key.verify(signed["Signature"], b"to be signed", ec.ECDSA(hashes.SHA256()))  # raises if wrong
ok("Sign")
verified = kms.verify(KeyId=signer["KeyId"], Message=b"to be signed", Signature=signed["Signature"], SigningAlgorithm="ECDSA_SHA_256")
assert verified["SignatureValid"] is True and verified["SigningAlgorithm"] == "ECDSA_SHA_256"
expect_error("KMSInvalidSignatureException", kms.verify, KeyId=signer["KeyId"], Message=b"to be signeD",
             Signature=signed["Signature"], SigningAlgorithm="ECDSA_SHA_256")
ok("Verify")

agreement = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
peer = ec.generate_private_key(ec.SECP256R1())
peer_public = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
derived = kms.derive_shared_secret(KeyId=agreement, KeyAgreementAlgorithm="ECDH", PublicKey=peer_public)
kms_public = serialization.load_der_public_key(kms.get_public_key(KeyId=agreement)["PublicKey"])
assert derived["SharedSecret"] == peer.exchange(ec.ECDH(), kms_public), "ECDH secrets differ"
assert arn_of(derived["KeyId"]) == agreement and derived["KeyAgreementAlgorithm"] == "ECDH"
ok("DeriveSharedSecret")

pair = kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256", EncryptionContext=context)
assert arn_of(pair["KeyId"]) == key and pair["KeyPairSpec"] == "ECC_NIST_P256"
private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
assert private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pair["PublicKey"]
assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context)["Plaintext"] == pair["PrivateKeyPlaintext"]
ok("GenerateDataKeyPair")
pair = kms.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="ECC_NIST_P256")
assert "PrivateKeyPlaintext" not in pair and pair["KeyPairSpec"] == "ECC_NIST_P256"
private = serialization.load_der_private_key(kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"], password=None)
assert private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pair["PublicKey"]
ok("GenerateDataKeyPairWithoutPlaintext")

# ---- imported key material (BYOK): wrapped with `cryptography`, as a client would ----
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

external = kms.create_key(Origin="EXTERNAL", Description="boto3 byok")["KeyMetadata"]
assert external["Origin"] == "EXTERNAL" and external["KeyState"] == "PendingImport" and not external["Enabled"]
expect_error("KMSInvalidStateException", kms.encrypt, KeyId=external["KeyId"], Plaintext=b"x")
oaep256 = asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
material = os.urandom(32)
params = kms.get_parameters_for_import(KeyId=external["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                       WrappingKeySpec="RSA_2048")
assert arn_of(params["KeyId"]) == external["KeyId"]
assert abs((params["ParametersValidTo"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds() - 86400) < 300
wrapping = serialization.load_der_public_key(params["PublicKey"])
ephemeral = os.urandom(32)
wrapped = wrapping.encrypt(ephemeral, oaep256) + aes_key_wrap_with_padding(ephemeral, material)
token = params["ImportToken"]
ok("GetParametersForImport")
expect_error("InvalidImportTokenException", kms.import_key_material, KeyId=external["KeyId"],
             ImportToken=token[:-1] + bytes([token[-1] ^ 1]), EncryptedKeyMaterial=wrapped,
             ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
expect_error("InvalidCiphertextException", kms.import_key_material, KeyId=external["KeyId"], ImportToken=token,
             EncryptedKeyMaterial=wrapped[:-1] + bytes([wrapped[-1] ^ 1]), ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
imported = kms.import_key_material(KeyId=external["KeyId"], ImportToken=token, EncryptedKeyMaterial=wrapped,
                                   ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
assert arn_of(imported["KeyId"]) == external["KeyId"] and len(imported["KeyMaterialId"]) == 64
meta = kms.describe_key(KeyId=external["KeyId"])["KeyMetadata"]
assert meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
assert abs((meta["ValidTo"] - valid_to).total_seconds()) < 2
byok_blob = kms.encrypt(KeyId=external["KeyId"], Plaintext=b"byok")["CiphertextBlob"]
ok("ImportKeyMaterial")
deleted = kms.delete_imported_key_material(KeyId=external["KeyId"])
assert deleted["KeyMaterialId"] == imported["KeyMaterialId"]
assert kms.describe_key(KeyId=external["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=byok_blob)
other = os.urandom(32)
expect_error("IncorrectKeyMaterialException", kms.import_key_material, KeyId=external["KeyId"], ImportToken=token,
             EncryptedKeyMaterial=wrapping.encrypt(ephemeral, oaep256) + aes_key_wrap_with_padding(ephemeral, other))
kms.import_key_material(KeyId=external["KeyId"], ImportToken=token, EncryptedKeyMaterial=wrapped)
assert kms.decrypt(CiphertextBlob=byok_blob)["Plaintext"] == b"byok"
ok("DeleteImportedKeyMaterial")

# ---- key policies and grants (the dev credential's principal is "dev") ----
me = f"arn:aws:iam::{account}:user/dev"
got = kms.get_key_policy(KeyId=key, PolicyName="default")
assert got["PolicyName"] == "default" and f"arn:aws:iam::{account}:root" in got["Policy"], got
ok("GetKeyPolicy")
assert kms.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
ok("ListKeyPolicies")
admin = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "kms:*", "Resource": "*"}
tenant_only = {"Sid": "TenantOnly", "Effect": "Deny", "Principal": {"AWS": me}, "Action": "kms:Decrypt",
               "Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": "42"}}}
policy = json.dumps({"Version": "2012-10-17", "Statement": [admin, tenant_only]})
expect_error("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=key, PolicyName="default", Policy="{}")
someone_else = dict(admin, Principal={"AWS": f"arn:aws:iam::{account}:user/someone-else"})
lockout = json.dumps({"Version": "2012-10-17", "Statement": [someone_else]})
expect_error("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=key, PolicyName="default", Policy=lockout)
kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == policy
tenant_blob = kms.encrypt(KeyId=key, Plaintext=b"t", EncryptionContext={"tenant": "42"})["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=tenant_blob, EncryptionContext={"tenant": "42"})["Plaintext"] == b"t"
other_blob = kms.encrypt(KeyId=key, Plaintext=b"o", EncryptionContext={"tenant": "43"})["CiphertextBlob"]
expect_error("AccessDeniedException", kms.decrypt, CiphertextBlob=other_blob, EncryptionContext={"tenant": "43"})
kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [admin]}))
ok("PutKeyPolicy")

grant_args = dict(KeyId=key, GranteePrincipal=me, RetiringPrincipal=me, Operations=["Encrypt", "Decrypt"],
                  Constraints={"EncryptionContextSubset": {"tenant": "42"}}, Name="boto3-grant")
grant = kms.create_grant(**grant_args)
assert re.match(r"^[0-9a-f]{64}$", grant["GrantId"]) and grant["GrantToken"], grant
assert kms.create_grant(**grant_args)["GrantId"] == grant["GrantId"], "same Name and terms: same grant"
kms.encrypt(KeyId=key, Plaintext=b"g", EncryptionContext={"tenant": "42"}, GrantTokens=[grant["GrantToken"]])
expect_error("InvalidGrantTokenException", kms.encrypt, KeyId=key, Plaintext=b"g", GrantTokens=["bogus!"])
ok("CreateGrant")
entry = [g for g in kms.list_grants(KeyId=key)["Grants"] if g["GrantId"] == grant["GrantId"]][0]
assert entry["Operations"] == ["Decrypt", "Encrypt"], entry
assert entry["Constraints"]["EncryptionContextSubset"] == {"tenant": "42"}, entry
assert (entry["Name"], entry["GranteePrincipal"], entry["RetiringPrincipal"]) == ("boto3-grant", me, me), entry
assert entry["IssuingAccount"] == f"arn:aws:iam::{account}:root" and arn_of(entry["KeyId"]) == key, entry
recent(entry["CreationDate"])
ok("ListGrants")
retirable = kms.list_retirable_grants(RetiringPrincipal=me)["Grants"]
assert [g["GrantId"] for g in retirable] == [grant["GrantId"]], retirable
ok("ListRetirableGrants")
kms.retire_grant(GrantToken=grant["GrantToken"])
expect_error("NotFoundException", kms.retire_grant, KeyId=key, GrantId=grant["GrantId"])
ok("RetireGrant")
second = kms.create_grant(KeyId=key, GranteePrincipal=me, Operations=["DescribeKey"])
kms.revoke_grant(KeyId=key, GrantId=second["GrantId"])
assert kms.list_grants(KeyId=key)["Grants"] == []
expect_error("InvalidGrantIdException", kms.revoke_grant, KeyId=key, GrantId="x")
ok("RevokeGrant")

# ---- last use, custom key stores ----
kms.encrypt(KeyId=external["KeyId"], Plaintext=b"tracked")
usage = kms.get_key_last_usage(KeyId=external["KeyId"])
assert arn_of(usage["KeyId"]) == external["KeyId"]
assert usage["KeyLastUsage"]["Operation"] == "Encrypt", usage
recent(usage["KeyLastUsage"]["Timestamp"])
assert usage["TrackingStartDate"] == usage["KeyCreationDate"]
ok("GetKeyLastUsage")
for name, call, kwargs in [
    ("CreateCustomKeyStore", kms.create_custom_key_store, {"CustomKeyStoreName": "hsm"}),
    ("DescribeCustomKeyStores", kms.describe_custom_key_stores, {}),
    ("UpdateCustomKeyStore", kms.update_custom_key_store, {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("DeleteCustomKeyStore", kms.delete_custom_key_store, {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("ConnectCustomKeyStore", kms.connect_custom_key_store, {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
    ("DisconnectCustomKeyStore", kms.disconnect_custom_key_store, {"CustomKeyStoreId": "cks-1234567890abcdef0"}),
]:
    e = expect_error("UnsupportedOperationException", call, **kwargs)
    assert "custom key stores" in e.response["Error"]["Message"], e.response
    ok(name)

# ---- cleanup operations last ----
kms.delete_alias(AliasName="alias/boto3-app")
assert "alias/boto3-app" not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
expect_error("NotFoundException", kms.delete_alias, AliasName="alias/boto3-app")
expect_error("NotFoundException", kms.describe_key, KeyId="alias/boto3-app")
ok("DeleteAlias")

# ---- multi-Region keys (one region here: tests/tests/multi_region.rs replicates for real) ----
mrk = kms.create_key(MultiRegion=True)["KeyMetadata"]
assert mrk["KeyId"].startswith("mrk-") and len(mrk["KeyId"]) == 36 and mrk["MultiRegion"]
config = mrk["MultiRegionConfiguration"]
assert config["MultiRegionKeyType"] == "PRIMARY" and config.get("ReplicaKeys", []) == []
assert config["PrimaryKey"]["Arn"] == mrk["Arn"], config
e = expect_error("ValidationException", kms.replicate_key, KeyId=mrk["KeyId"], ReplicaRegion="eu-west-1")
assert "[regions.eu-west-1]" in e.response["Error"]["Message"]
expect_error("UnsupportedOperationException", kms.update_primary_region, KeyId=key, PrimaryRegion="dev-1")
ok("ReplicateKey")
ok("UpdatePrimaryRegion")

print(f"OK {len(seen)} operations: {' '.join(sorted(seen))}")
