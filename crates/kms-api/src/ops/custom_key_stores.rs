//! Custom key stores (CloudHSM clusters, external key managers) do not exist here: every key
//! lives in the region's own replicated store, sealed under the region root key. The six
//! operations answer that plainly rather than "not implemented yet".

use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::policy::Action;
use kms_core::{KmsError, KmsResult};
use kms_proto::v1 as pb;

fn unsupported<T>(operation: &str) -> KmsResult<T> {
    Err(KmsError::unsupported(format!(
        "{operation}: custom key stores (AWS CloudHSM, external key stores) are not supported by this \
         service; keys are kept in the region's own replicated store, sealed under its root key"
    )))
}

macro_rules! custom_key_store_operations {
    ($($method:ident: $request:ident => $response:ident = $name:ident;)*) => {
        impl Kms {
            $(
                pub async fn $method(&self, caller: &Caller, _req: pb::$request) -> KmsResult<pb::$response> {
                    self.authorize_without_key(caller, Action::$name)?;
                    unsupported(stringify!($name))
                }
            )*
        }
    };
}

custom_key_store_operations! {
    create_custom_key_store: CreateCustomKeyStoreRequest => CreateCustomKeyStoreResponse = CreateCustomKeyStore;
    describe_custom_key_stores: DescribeCustomKeyStoresRequest => DescribeCustomKeyStoresResponse = DescribeCustomKeyStores;
    update_custom_key_store: UpdateCustomKeyStoreRequest => UpdateCustomKeyStoreResponse = UpdateCustomKeyStore;
    delete_custom_key_store: DeleteCustomKeyStoreRequest => DeleteCustomKeyStoreResponse = DeleteCustomKeyStore;
    connect_custom_key_store: ConnectCustomKeyStoreRequest => ConnectCustomKeyStoreResponse = ConnectCustomKeyStore;
    disconnect_custom_key_store: DisconnectCustomKeyStoreRequest => DisconnectCustomKeyStoreResponse = DisconnectCustomKeyStore;
}
