//! PutKeyPolicy / CreateKey's Policy: any text. Parsing must never panic; a policy that parses
//! must evaluate a request without panicking either.
#![no_main]

use kms_core::ids::RegionScope;
use kms_core::policy::{Action, PolicyDocument, Principal, Request, RequestContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(policy) = PolicyDocument::parse(text) else { return };
    let scope = RegionScope::new("dev-1", "111122223333");
    let principal = Principal::from_name("alice", &scope);
    let mut context = RequestContext::new();
    context.add("kms:EncryptionContext:purpose", "fuzz").add("kms:CallerAccount", "111122223333");
    let resource = scope.key_arn("1234abcd-12ab-34cd-56ef-1234567890ab");
    for action in [Action::Encrypt, Action::CreateGrant, Action::PutKeyPolicy] {
        policy.evaluate(&Request { principal: &principal, action, resource: &resource, context: &context });
    }
});
