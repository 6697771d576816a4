//! The kms.v1 gRPC contract, generated from `proto/kms/v1/kms.proto`.
//!
//! - [`v1`]: prost messages and enums, the tonic client
//!   ([`v1::key_management_service_client::KeyManagementServiceClient`]) and server
//!   ([`v1::key_management_service_server::KeyManagementServiceServer`]).
//! - Every enum has `aws_name()` / `from_aws_name()` / `AWS_NAMES` for the AWS wire strings
//!   (`KeySpec::Rsa2048` <-> `"RSA_2048"`, `KeyState::PendingDeletion` <-> `"PendingDeletion"`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptor set, for gRPC reflection.
//! - [`EXCEPTION_METADATA_KEY`]: the status metadata key that carries the AWS exception name.
//! - [`k8s_kms_v2`]: the Kubernetes KMS v2 plugin API, from the vendored upstream proto.
#![forbid(unsafe_code)]

/// Generated code for package `kms.v1`.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, missing_docs)]
pub mod v1 {
    tonic::include_proto!("kms.v1");
    include!(concat!(env!("OUT_DIR"), "/kms.v1.aws_names.rs"));
}

/// The encoded `FileDescriptorSet` of kms.v1, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kms_descriptor");

/// Generated code for package `kms.admin.v1` (`proto/kms/admin/v1/admin.proto`): the
/// `ClusterAdmin` service that manages a region's membership.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, missing_docs)]
pub mod admin {
    pub mod v1 {
        tonic::include_proto!("kms.admin.v1");
    }
}

/// Generated code for package `kms.region.v1` (`proto/kms/region/v1/region.proto`): the
/// `RegionReplication` service through which regions send each other multi-Region key updates.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, missing_docs)]
pub mod region {
    pub mod v1 {
        tonic::include_proto!("kms.region.v1");
    }
}

/// The encoded `FileDescriptorSet` of kms.admin.v1, for `tonic-reflection`.
pub const ADMIN_FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kms_admin_descriptor");

/// The Kubernetes KMS v2 plugin API (`k8s.io/kms/apis/v2`, proto package `v2`), generated from
/// the upstream file vendored verbatim under `proto/upstream/`: the messages, the tonic server
/// ([`k8s_kms_v2::key_management_service_server::KeyManagementServiceServer`]) that kmsd serves
/// on a unix socket, and a client. gRPC method names are `/v2.KeyManagementService/...`.
#[allow(clippy::all, clippy::pedantic, clippy::nursery, missing_docs)]
pub mod k8s_kms_v2 {
    tonic::include_proto!("v2");
}

/// Every kms.v1 enum, named by its AWS wire strings: one trait so that generic code (the
/// server's domain conversions, kmsctl's parsing and rendering) needs no per-enum tables.
pub trait AwsEnum: Sized + Copy + Into<i32> + TryFrom<i32> + Send + Sync + 'static {
    /// Every AWS wire string of the enum (UNSPECIFIED excluded).
    const AWS_NAMES: &'static [&'static str];
    /// The AWS wire string; `None` for `Unspecified`.
    fn aws_name(self) -> Option<&'static str>;
    /// Parses an AWS wire string (exact, case-sensitive).
    fn from_aws_name(s: &str) -> Option<Self>;
}

/// gRPC status metadata key whose value is the AWS exception name (e.g. `NotFoundException`).
pub const EXCEPTION_METADATA_KEY: &str = "x-kms-exception";

#[cfg(test)]
mod tests {
    use super::v1::*;

    #[test]
    fn enum_aws_names_round_trip() {
        assert_eq!(KeySpec::Rsa2048.aws_name(), Some("RSA_2048"));
        assert_eq!(KeySpec::from_aws_name("SYMMETRIC_DEFAULT"), Some(KeySpec::SymmetricDefault));
        assert_eq!(KeyState::PendingDeletion.aws_name(), Some("PendingDeletion"));
        assert_eq!(
            GrantOperation::from_aws_name("GenerateDataKeyWithoutPlaintext"),
            Some(GrantOperation::GenerateDataKeyWithoutPlaintext)
        );
        assert_eq!(KeyUsage::Unspecified.aws_name(), None);
        assert_eq!(KeySpec::from_aws_name("rsa_2048"), None);
        for name in SigningAlgorithmSpec::AWS_NAMES {
            let v = SigningAlgorithmSpec::from_aws_name(name);
            assert_eq!(v.and_then(|v| v.aws_name()), Some(*name));
        }
    }

    #[test]
    fn descriptor_set_decodes() {
        use prost::Message as _;
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET);
        assert!(fds.is_ok_and(|f| f.file.iter().any(|f| f.package() == "kms.v1")));
    }
}
