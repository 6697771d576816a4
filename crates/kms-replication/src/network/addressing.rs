//! Who a node-to-node message is for: every RPC on the Raft port names the region and the node
//! it was sent to, and a node refuses what was meant for another.
//!
//! Raft itself cannot tell a message of another cluster: a leader that still sends to a peer's
//! old address (a pod IP handed to a node of another region, a port reused by another process)
//! would have the node there step down and take entries of a foreign log. Mutual TLS does not
//! rule it out either, since regions may share a CA. The two headers make such a message fail
//! with `FAILED_PRECONDITION` before it reaches Raft; the sender treats it as an unreachable peer.
//!
//! A message without the headers (a node of an earlier build, during a rolling upgrade) is let
//! in; the headers become required once no earlier build is left to speak to.

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

const REGION_HEADER: &str = "kms-raft-region";
const NODE_HEADER: &str = "kms-raft-node";

/// Why `region` cannot name a region, if it cannot: it must be non-empty printable ASCII, as it
/// is sent with every Raft message. (A header value may carry bytes above 0x7f; a region name
/// may not.)
pub fn check_region_name(region: &str) -> Result<(), String> {
    if !region.is_empty() && region.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err("the region name must be printable ASCII: it is sent with every raft message".into())
    }
}

/// A region name as a header value, or why it cannot be one.
pub(crate) fn region_header(region: &str) -> Result<AsciiMetadataValue, String> {
    check_region_name(region)?;
    AsciiMetadataValue::try_from(region).map_err(|e| format!("the region name as a header: {e}"))
}

/// Stamps each outgoing request with the region and node it is addressed to (client side).
#[derive(Clone)]
pub(crate) struct Addressee {
    region: AsciiMetadataValue,
    node: AsciiMetadataValue,
}

impl Addressee {
    pub(crate) fn new(region: AsciiMetadataValue, node_id: u64) -> Self {
        Self { region, node: AsciiMetadataValue::from(node_id) }
    }
}

impl Interceptor for Addressee {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert(REGION_HEADER, self.region.clone());
        metadata.insert(NODE_HEADER, self.node.clone());
        Ok(request)
    }
}

/// This node, as the receiving end of peer messages (server side).
#[derive(Clone, Debug)]
pub(crate) struct LocalNode {
    pub(crate) region: String,
    pub(crate) node_id: u64,
}

impl LocalNode {
    /// Refuses a message addressed to another region or another node.
    pub(crate) fn admit(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let header = |name| metadata.get(name).map(|v: &AsciiMetadataValue| v.to_str().unwrap_or("?"));
        let (region, node) = (header(REGION_HEADER), header(NODE_HEADER));
        let region_ok = region.is_none_or(|r| r == self.region);
        let node_ok = node.is_none_or(|n| n.parse::<u64>().ok() == Some(self.node_id));
        if region_ok && node_ok {
            return Ok(());
        }
        // Both names are printable ASCII from the peer, bounded by HTTP/2's header limits.
        Err(Status::failed_precondition(format!(
            "misaddressed raft message: sent to node {} of region {}, received by node {} of region {}",
            node.unwrap_or("?"),
            region.unwrap_or("?"),
            self.node_id,
            self.region
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stamped(region: &str, node_id: u64) -> MetadataMap {
        let mut addressee = Addressee::new(region_header(region).unwrap(), node_id);
        addressee.call(Request::new(())).unwrap().metadata().clone()
    }

    fn local() -> LocalNode {
        LocalNode { region: "eu-west-1".into(), node_id: 2 }
    }

    #[test]
    fn a_message_for_this_node_is_admitted() {
        local().admit(&stamped("eu-west-1", 2)).unwrap();
    }

    #[test]
    fn a_message_for_another_node_or_region_is_refused_with_both_addresses() {
        for (region, node) in [("eu-west-1", 3), ("us-east-1", 2), ("us-east-1", 3)] {
            let status = local().admit(&stamped(region, node)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::FailedPrecondition);
            assert!(status.message().contains(&format!("sent to node {node} of region {region}")));
            assert!(status.message().contains("received by node 2 of region eu-west-1"));
        }
    }

    #[test]
    fn a_garbled_node_header_is_refused() {
        let mut metadata = stamped("eu-west-1", 2);
        metadata.insert(NODE_HEADER, AsciiMetadataValue::from_static("2x"));
        assert!(local().admit(&metadata).is_err());
    }

    #[test]
    fn a_message_of_an_earlier_build_without_headers_is_admitted() {
        local().admit(&MetadataMap::new()).unwrap();
    }

    #[test]
    fn a_region_name_that_cannot_be_a_header_is_refused() {
        assert!(region_header("eu-west-1").is_ok());
        assert!(region_header("région").is_err());
        assert!(region_header("a\nb").is_err());
        assert!(region_header("").is_err());
    }
}
