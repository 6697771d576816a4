//! Multi-Region awareness: which regions a call may go to, in which order, and how a key ARN
//! is named in another region. Pure functions, plus the small cache of what the client learnt
//! about each multi-Region key's regions.

use super::operations::Routing;
use kms_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MRK_PREFIX: &str = "mrk-";

/// A key as a request names it, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyName {
    /// A multi-Region key by its bare id (`mrk-...`): the same id in every region.
    MrkId(String),
    /// An ARN: `arn:<partition>:kms:<region>:<account>:<resource>`; `mrk` when the resource is a
    /// multi-Region key (`key/mrk-...`).
    Arn { region: String, key_id: Option<String>, mrk: bool },
    /// A single-Region key id, an alias name, or text the server will judge.
    Other,
}

pub(crate) fn key_name(text: &str) -> KeyName {
    if text.starts_with(MRK_PREFIX) {
        return KeyName::MrkId(text.to_string());
    }
    let Some((region, resource)) = arn_parts(text) else { return KeyName::Other };
    let key_id = resource.strip_prefix("key/").map(str::to_string);
    let mrk = key_id.as_deref().is_some_and(|id| id.starts_with(MRK_PREFIX));
    KeyName::Arn { region: region.to_string(), key_id, mrk }
}

/// `(region, resource)` of a KMS ARN.
fn arn_parts(text: &str) -> Option<(&str, &str)> {
    let mut parts = text.splitn(6, ':');
    let (arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    (arn == "arn" && service == "kms").then_some((region, resource))
}

/// The ARN of the same multi-Region key in `region`, if `text` is a multi-Region key ARN of
/// another region. Related multi-Region keys share their id, so their ARNs differ only there.
pub(crate) fn arn_in_region(text: &str, region: &str) -> Option<String> {
    let (current, resource) = arn_parts(text)?;
    if current == region || !resource.starts_with("key/mrk-") {
        return None;
    }
    let mut parts: Vec<&str> = text.splitn(6, ':').collect();
    parts[3] = region;
    Some(parts.join(":"))
}

/// The key id at the front of a ciphertext blob of the symmetric format (`0x01 | length (u8) |
/// key id | ...`, docs/architecture.md "Ciphertext blob"). Other blobs (RSA, anything else)
/// name no key: `None`.
pub(crate) fn blob_key_id(blob: &[u8]) -> Option<&str> {
    let (&format, rest) = blob.split_first()?;
    let (&length, rest) = rest.split_first()?;
    if format != 0x01 {
        return None;
    }
    std::str::from_utf8(rest.get(..usize::from(length))?).ok()
}

/// The regions of one multi-Region key, from its KeyMetadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRegions {
    pub primary: String,
    pub replicas: Vec<String>,
}

impl KeyRegions {
    pub(crate) fn from_metadata(metadata: &pb::KeyMetadata) -> Option<(String, KeyRegions)> {
        let config = metadata.multi_region_configuration.as_ref()?;
        let primary = config.primary_key.as_ref()?.region.clone();
        let replicas = config.replica_keys.iter().map(|k| k.region.clone()).collect();
        Some((metadata.key_id.clone(), KeyRegions { primary, replicas }))
    }

    fn holds(&self, region: &str) -> bool {
        self.primary == region || self.replicas.iter().any(|r| r == region)
    }
}

/// Where a call may go: region names in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub regions: Vec<String>,
    /// Whether a region that cannot answer hands the call to the next one (cryptographic calls
    /// on multi-Region keys), rather than being retried until the call gives up.
    pub failover: bool,
}

impl Plan {
    fn only(region: &str) -> Plan {
        Plan { regions: vec![region.to_string()], failover: false }
    }
}

/// What routing needs to know before it can plan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Planned {
    Ready(Plan),
    /// A management call on a multi-Region key whose primary region the client does not know.
    NeedsRegions(String),
}

/// Plans a call of `routing` naming `key` (the key field or the blob's key id). `regions` are
/// the configured region names, the home region first; `known` what the client knows of the
/// key's regions. `regions` is never empty: the builder refuses a client without a region.
pub(crate) fn plan(
    routing: Routing,
    key: Option<&str>,
    regions: &[String],
    known: Option<&KeyRegions>,
) -> Planned {
    let home = regions[0].as_str();
    let configured = |name: &str| regions.iter().any(|r| r == name);
    let name = key.map(key_name).unwrap_or(KeyName::Other);
    match (routing, name) {
        (Routing::Home, _) | (_, KeyName::Other) => Planned::Ready(Plan::only(home)),
        (Routing::Crypto, KeyName::MrkId(_) | KeyName::Arn { mrk: true, .. }) => {
            let mut order = vec![home.to_string()];
            order.extend(regions[1..].iter().filter(|r| known.is_none_or(|k| k.holds(r))).cloned());
            Planned::Ready(Plan { regions: order, failover: true })
        }
        (_, KeyName::Arn { region, .. }) if configured(&region) => Planned::Ready(Plan::only(&region)),
        (Routing::Primary | Routing::PrimaryChangingRegions, KeyName::MrkId(id)) => match known {
            Some(k) if configured(&k.primary) => Planned::Ready(Plan::only(&k.primary)),
            Some(_) => Planned::Ready(Plan::only(home)),
            None => Planned::NeedsRegions(id),
        },
        _ => Planned::Ready(Plan::only(home)),
    }
}

/// What the client learnt of multi-Region keys' regions, for `ttl` (a primary can move: an
/// UpdatePrimaryRegion through this client forgets the key at once, one through another client
/// is noticed after `ttl`).
#[derive(Debug)]
pub(crate) struct RegionCache {
    ttl: Duration,
    keys: Mutex<HashMap<String, (KeyRegions, Instant)>>,
}

impl RegionCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, keys: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, key_id: &str) -> Option<KeyRegions> {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.get(key_id).filter(|(_, at)| at.elapsed() < self.ttl).map(|(regions, _)| regions.clone())
    }

    pub(crate) fn learn(&self, metadata: &pb::KeyMetadata) {
        if let Some((key_id, regions)) = KeyRegions::from_metadata(metadata) {
            let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            keys.insert(key_id, (regions, Instant::now()));
        }
    }

    pub(crate) fn forget(&self, key_id: &str) {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key_id);
    }
}

/// The key id of a key as named by a request (bare id or ARN), for the cache.
pub(crate) fn cache_key(name: &str) -> Option<String> {
    match key_name(name) {
        KeyName::MrkId(id) => Some(id),
        KeyName::Arn { key_id: Some(id), mrk: true, .. } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MRK: &str = "mrk-0123456789abcdef0123456789abcdef";

    fn arn(region: &str, resource: &str) -> String {
        format!("arn:aws:kms:{region}:111122223333:{resource}")
    }

    fn regions() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    fn ready(regions: &[&str], failover: bool) -> Planned {
        Planned::Ready(Plan { regions: regions.iter().map(|r| r.to_string()).collect(), failover })
    }

    #[test]
    fn key_names_are_recognised() {
        assert_eq!(key_name(MRK), KeyName::MrkId(MRK.into()));
        let mrk_arn = arn("b", &format!("key/{MRK}"));
        assert_eq!(
            key_name(&mrk_arn),
            KeyName::Arn { region: "b".into(), key_id: Some(MRK.into()), mrk: true }
        );
        let alias_arn = arn("b", "alias/app");
        assert_eq!(key_name(&alias_arn), KeyName::Arn { region: "b".into(), key_id: None, mrk: false });
        for other in ["1234abcd-12ab-34cd-56ef-1234567890ab", "alias/app", "arn:aws:s3:::bucket", ""] {
            assert_eq!(key_name(other), KeyName::Other, "{other}");
        }
    }

    #[test]
    fn only_multi_region_key_arns_are_rewritten() {
        let mrk_arn = arn("a", &format!("key/{MRK}"));
        assert_eq!(arn_in_region(&mrk_arn, "b"), Some(arn("b", &format!("key/{MRK}"))));
        assert_eq!(arn_in_region(&mrk_arn, "a"), None, "already there");
        assert_eq!(arn_in_region(&arn("a", "key/1234abcd-12ab-34cd-56ef-1234567890ab"), "b"), None);
        assert_eq!(arn_in_region(&arn("a", "alias/app"), "b"), None);
        assert_eq!(arn_in_region(MRK, "b"), None, "a bare id is the same everywhere");
    }

    #[test]
    fn the_blob_names_its_key() {
        let mut blob = vec![0x01, MRK.len() as u8];
        blob.extend_from_slice(MRK.as_bytes());
        blob.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(blob_key_id(&blob), Some(MRK));
        assert_eq!(blob_key_id(&blob[..10]), None, "truncated");
        assert_eq!(blob_key_id(&[0x02, 1, b'k']), None, "another format");
        assert_eq!(blob_key_id(&[]), None);
    }

    #[test]
    fn crypto_calls_on_multi_region_keys_fail_over_to_regions_holding_the_key() {
        let regions = regions();
        assert_eq!(plan(Routing::Crypto, Some(MRK), &regions, None), ready(&["a", "b", "c"], true));
        let known = KeyRegions { primary: "c".into(), replicas: vec!["a".into()] };
        assert_eq!(plan(Routing::Crypto, Some(MRK), &regions, Some(&known)), ready(&["a", "c"], true));
        let in_b = arn("b", &format!("key/{MRK}"));
        assert_eq!(
            plan(Routing::Crypto, Some(&in_b), &regions, None),
            ready(&["a", "b", "c"], true),
            "home first"
        );
        let single = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(plan(Routing::Crypto, Some(single), &regions, None), ready(&["a"], false));
        let single_in_b = arn("b", &format!("key/{single}"));
        assert_eq!(plan(Routing::Crypto, Some(&single_in_b), &regions, None), ready(&["b"], false));
        assert_eq!(plan(Routing::Crypto, None, &regions, None), ready(&["a"], false));
    }

    #[test]
    fn management_of_a_multi_region_key_goes_to_its_primary() {
        let regions = regions();
        assert_eq!(plan(Routing::Primary, Some(MRK), &regions, None), Planned::NeedsRegions(MRK.into()));
        let known = KeyRegions { primary: "b".into(), replicas: vec!["a".into()] };
        assert_eq!(plan(Routing::Primary, Some(MRK), &regions, Some(&known)), ready(&["b"], false));
        let elsewhere = KeyRegions { primary: "z".into(), replicas: vec![] };
        assert_eq!(plan(Routing::Primary, Some(MRK), &regions, Some(&elsewhere)), ready(&["a"], false));
        // An ARN names the region meant: its replica there, not the primary.
        let in_c = arn("c", &format!("key/{MRK}"));
        assert_eq!(
            plan(Routing::PrimaryChangingRegions, Some(&in_c), &regions, Some(&known)),
            ready(&["c"], false)
        );
        assert_eq!(plan(Routing::Home, Some(MRK), &regions, None), ready(&["a"], false));
    }

    #[test]
    fn the_cache_learns_from_metadata_and_forgets() {
        let cache = RegionCache::new(Duration::from_secs(60));
        let key = |region: &str| pb::MultiRegionKey { arn: String::new(), region: region.into() };
        let metadata = pb::KeyMetadata {
            key_id: MRK.into(),
            multi_region_configuration: Some(pb::MultiRegionConfiguration {
                primary_key: Some(key("a")),
                replica_keys: vec![key("b")],
                ..Default::default()
            }),
            ..Default::default()
        };
        cache.learn(&metadata);
        assert_eq!(cache.get(MRK), Some(KeyRegions { primary: "a".into(), replicas: vec!["b".into()] }));
        cache.forget(MRK);
        assert_eq!(cache.get(MRK), None);
        cache.learn(&pb::KeyMetadata { key_id: "single".into(), ..Default::default() });
        assert_eq!(cache.get("single"), None);
        let expired = RegionCache::new(Duration::ZERO);
        expired.learn(&metadata);
        assert_eq!(expired.get(MRK), None);
        assert_eq!(cache_key(&arn("a", &format!("key/{MRK}"))), Some(MRK.into()));
        assert_eq!(cache_key("alias/app"), None);
    }
}
