//! The KMS actions a policy statement names (`kms:Encrypt`, ...), one per permission AWS defines.

use crate::spec::GrantOperation;
use std::fmt;

macro_rules! actions {
    ($($variant:ident),+ $(,)?) => {
        /// A KMS permission, as AWS names it in policies (`kms:<Name>`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),+ }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The policy name, e.g. `kms:Encrypt`.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => concat!("kms:", stringify!($variant))),+ }
            }
        }
    };
}

actions! {
    CancelKeyDeletion,
    ConnectCustomKeyStore,
    CreateAlias,
    CreateCustomKeyStore,
    CreateGrant,
    CreateKey,
    Decrypt,
    DeleteAlias,
    DeleteCustomKeyStore,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeCustomKeyStores,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    DisconnectCustomKeyStore,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    GenerateRandom,
    GetKeyLastUsage,
    GetKeyPolicy,
    GetKeyRotationStatus,
    GetParametersForImport,
    GetPublicKey,
    ImportKeyMaterial,
    ListAliases,
    ListGrants,
    ListKeyPolicies,
    ListKeyRotations,
    ListKeys,
    ListResourceTags,
    ListRetirableGrants,
    PutKeyPolicy,
    ReEncryptFrom,
    ReEncryptTo,
    ReplicateKey,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    SynchronizeMultiRegionKey,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateCustomKeyStore,
    UpdateKeyDescription,
    UpdatePrimaryRegion,
    Verify,
    VerifyMac,
}

impl Action {
    /// The grant operation that allows this action, if a grant can allow it at all.
    pub fn grant_operation(self) -> Option<GrantOperation> {
        use GrantOperation as G;
        Some(match self {
            Self::Decrypt => G::Decrypt,
            Self::Encrypt => G::Encrypt,
            Self::GenerateDataKey => G::GenerateDataKey,
            Self::GenerateDataKeyWithoutPlaintext => G::GenerateDataKeyWithoutPlaintext,
            Self::ReEncryptFrom => G::ReEncryptFrom,
            Self::ReEncryptTo => G::ReEncryptTo,
            Self::Sign => G::Sign,
            Self::Verify => G::Verify,
            Self::GetPublicKey => G::GetPublicKey,
            Self::CreateGrant => G::CreateGrant,
            Self::RetireGrant => G::RetireGrant,
            Self::DescribeKey => G::DescribeKey,
            Self::GenerateDataKeyPair => G::GenerateDataKeyPair,
            Self::GenerateDataKeyPairWithoutPlaintext => G::GenerateDataKeyPairWithoutPlaintext,
            Self::GenerateMac => G::GenerateMac,
            Self::VerifyMac => G::VerifyMac,
            Self::DeriveSharedSecret => G::DeriveSharedSecret,
            _ => return None,
        })
    }

    /// Whether grant constraints (encryption context) apply to this action. AWS applies them to
    /// the operations that take an encryption context, not to DescribeKey or RetireGrant; for
    /// CreateGrant they bound the grants created instead.
    pub fn takes_encryption_context(self) -> bool {
        matches!(
            self,
            Self::Encrypt
                | Self::Decrypt
                | Self::ReEncryptFrom
                | Self::ReEncryptTo
                | Self::GenerateDataKey
                | Self::GenerateDataKeyWithoutPlaintext
                | Self::GenerateDataKeyPair
                | Self::GenerateDataKeyPairWithoutPlaintext
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_operation_is_an_action() {
        for op in GrantOperation::ALL {
            let action = Action::ALL.iter().find(|a| a.grant_operation() == Some(*op));
            assert_eq!(action.map(|a| a.name().trim_start_matches("kms:")), Some(op.as_str()));
        }
        assert_eq!(Action::PutKeyPolicy.name(), "kms:PutKeyPolicy");
        assert_eq!(Action::PutKeyPolicy.grant_operation(), None);
    }
}
