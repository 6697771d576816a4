//! Service keys (AWS managed keys, `kms_core::managed`): found or created on first use.
//!
//! An integrated service is a name; its principal is the caller of the same name (the
//! Kubernetes plugin runs as `kubernetes`). In-process integrations call [`Kms::service_key`];
//! principals registered with [`Kms::with_services`] (kmsd's `services = [...]`) get their key
//! created the first time they name `alias/aws/<their name>` in an encrypting operation
//! (Encrypt, GenerateDataKey*, ReEncrypt's destination). Any other caller naming a missing
//! `alias/aws/...` gets NotFoundException, as for any alias.

use crate::caller::Caller;
use crate::kms::Kms;
use kms_core::command::Command;
use kms_core::ids::{KeyRef, new_key_id};
use kms_core::key::KeyRecord;
use kms_core::managed::{
    SERVICE_ALIAS_PREFIX, ServiceKeySpec, new_service_key, service_alias, validate_service_name,
};
use kms_core::policy::Principal;
use kms_core::spec::KeySpec;
use kms_core::{ErrorKind, KmsResult};
use std::sync::Arc;

impl Kms {
    /// Registers principals as integrated services: each may have its key `alias/aws/<name>`
    /// created by naming it.
    pub fn with_services(mut self, services: impl IntoIterator<Item = String>) -> KmsResult<Self> {
        let services = services.into_iter().collect::<std::collections::BTreeSet<_>>();
        for service in &services {
            validate_service_name(service)?;
        }
        self.services = Arc::new(services);
        Ok(self)
    }

    /// The AWS managed key of `service` (`alias/aws/<service>`), created on first use: a
    /// symmetric key rotating yearly whose policy lets only the principal `service` use it.
    /// Creation is one replicated command, so nodes racing to create it end with one key.
    pub async fn service_key(&self, service: &str) -> KmsResult<Arc<KeyRecord>> {
        validate_service_name(service)?;
        match self.resolve(&KeyRef::Alias(service_alias(service))).await {
            Err(err) if err.kind == ErrorKind::NotFoundException => {}
            found => return found,
        }
        let key_id = new_key_id(false);
        // Material is sealed before proposing: the Raft log only ever sees it sealed.
        let (material, _) = self.new_material(&key_id, KeySpec::SymmetricDefault, 0, None).await?;
        let principal = Principal::from_name(service, &self.scope);
        let spec =
            ServiceKeySpec { key_id, service, principal_arn: &principal.arn, material, now: self.now() };
        let proposed = new_service_key(&self.scope, spec);
        let key =
            self.propose_key(Command::CreateServiceKey { key: proposed.clone(), now: self.now() }).await?;
        if key.key_id == proposed.key_id {
            tracing::info!(service, key_id = %key.key_id, "created the service's AWS managed key");
        }
        Ok(Arc::new(key))
    }

    /// The key `key_id` names for an encrypting operation of `caller`: a registered service
    /// naming its own `alias/aws/<service>` gets it created on first use.
    pub(crate) async fn key_for(&self, key_id: &str, caller: &Caller) -> KmsResult<Arc<KeyRecord>> {
        match key_id.strip_prefix(SERVICE_ALIAS_PREFIX) {
            Some(service) if service == caller.principal && self.services.contains(service) => {
                self.service_key(service).await
            }
            _ => self.key(key_id, true).await,
        }
    }
}
