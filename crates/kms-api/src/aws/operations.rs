//! The operations the AWS endpoint dispatches to [`Kms`], listed once.
//!
//! The list itself is `crate::operations` (shared with the gRPC front end). Each implemented
//! entry maps `TrentService.<Operation>` to the `Kms` method and its kms.v1 request and response
//! types; the JSON crosses through the one [`Codec`]. Names the service does not have answer
//! UnknownOperationException.

use super::codec::Codec;
use super::error::AwsError;
use crate::caller::Caller;
use crate::kms::Kms;
use crate::metrics::Api;
use kms_proto::v1 as pb;
use serde_json::Value as Json;

/// The kms.v1 service whose methods are the AWS operations.
const SERVICE: &str = "kms.v1.KeyManagementService";

macro_rules! aws_operations {
    (
        implemented { $($method:ident: $name:literal, $req:ident => $resp:ident;)* }
    ) => {
        /// The operations this endpoint executes, by AWS name.
        pub const IMPLEMENTED: &[&str] = &[$($name),*];

        #[cfg(test)]
        pub(crate) const TABLE: &[(&str, &str, &str, &str)] =
            &[$(($name, stringify!($method), stringify!($req), stringify!($resp))),*];

        /// Runs `operation` with the JSON `input` as `caller`; every call is audited once (input
        /// that does not decode and unknown operations as refusals).
        pub async fn dispatch(
            kms: &Kms,
            codec: &Codec,
            caller: &Caller,
            operation: &str,
            input: &Json,
        ) -> Result<Json, AwsError> {
            match operation {
                $(
                    $name => {
                        let request: pb::$req = codec
                            .decode(concat!("kms.v1.", stringify!($req)), input)
                            .inspect_err(|e| kms.audit_refused(Api::Aws, $name, caller, e.code))?;
                        let response =
                            kms.audited(Api::Aws, $name, caller, request, |r| kms.$method(caller, r)).await?;
                        codec.encode(concat!("kms.v1.", stringify!($resp)), &response)
                    }
                )*
                other => Err(unknown_operation(other))
                    .inspect_err(|e| kms.audit_refused(Api::Aws, other, caller, e.code)),
            }
        }
    };
}

crate::operations::kms_operations!(aws_operations);

/// Whether `operation` is a method of the kms.v1 service (i.e. an AWS KMS operation).
pub fn is_kms_operation(codec: &Codec, operation: &str) -> bool {
    codec.pool().get_service_by_name(SERVICE).is_some_and(|s| s.methods().any(|m| m.name() == operation))
}

pub(crate) fn unknown_operation(operation: &str) -> AwsError {
    AwsError::unknown_operation(format!("Operation {operation} is not a KMS operation"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pascal(snake: &str) -> String {
        snake
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn the_list_matches_the_contract() {
        let codec = Codec::new().unwrap();
        for (name, method, req, resp) in TABLE {
            assert_eq!(pascal(method), *name);
            assert_eq!(*req, format!("{name}Request"));
            assert_eq!(*resp, format!("{name}Response"));
            assert!(is_kms_operation(&codec, name));
        }
        let service = codec.pool().get_service_by_name(SERVICE).unwrap();
        assert_eq!(service.methods().len(), 54);
        for method in service.methods() {
            assert!(IMPLEMENTED.contains(&method.name()), "{} is not implemented", method.name());
            assert_eq!(method.input().full_name(), format!("kms.v1.{}Request", method.name()));
            assert_eq!(method.output().full_name(), format!("kms.v1.{}Response", method.name()));
        }
        assert!(!is_kms_operation(&codec, "Frobnicate"));
    }
}
