//! `kmsctl cluster ...`: administration of a region's Raft group over `kms.admin.v1.ClusterAdmin`
//! (served by every kmsd on its client port; a follower hands changes to the leader).

use crate::connection::{Connection, Transport};
use clap::Subcommand;
use kms_proto::admin::v1 as pb;
use kms_proto::admin::v1::cluster_admin_client::ClusterAdminClient;
use kms_proto::region::v1 as region_pb;
use kms_proto::region::v1::region_replication_client::RegionReplicationClient;

use crate::error::CliError;
use crate::json::Json;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Every member of the region: id, Raft address, voter or learner, state, term, last log and
    /// applied index, and the leader each one knows; and multi-Region key replication to and from
    /// the other regions (outbox entries, lag, last push, last error).
    Status,
    /// Add a new node as a non-voting learner; waits until it has caught up with the log.
    /// Give every new node a new id, larger than every existing one; never reuse an id.
    AddLearner {
        /// The new node's id (its `node_id`).
        #[arg(long)]
        node_id: u64,
        /// host:port of the new node's Raft listener (its raft_advertise / raft_listen).
        #[arg(long)]
        raft_address: String,
    },
    /// Make a learner a voter.
    Promote {
        #[arg(long)]
        node_id: u64,
    },
    /// Remove a voter or learner from the region (removing the leader hands leadership to another
    /// voter first). Stop the removed node's kmsd afterwards; never reuse its id.
    RemoveNode {
        #[arg(long)]
        node_id: u64,
    },
    /// Make the given voter the leader.
    TransferLeader {
        #[arg(long)]
        node_id: u64,
    },
}

async fn connect(connection: &Connection) -> Result<ClusterAdminClient<Transport>, CliError> {
    Ok(ClusterAdminClient::new(connection.transport().await?))
}

macro_rules! call {
    ($client:expr, $op:literal, $method:ident, $req:expr) => {
        $client
            .$method($req)
            .await
            .map_err(|status| CliError::Service { operation: $op, status })?
            .into_inner()
    };
}

pub async fn run(connection: &Connection, command: ClusterCommand) -> Result<Json, CliError> {
    let mut client = connect(connection).await?;
    let json = match command {
        ClusterCommand::Status => {
            let mut status = render_status(call!(
                client,
                "GetClusterStatus",
                get_cluster_status,
                pb::GetClusterStatusRequest {}
            ));
            let mut regions = RegionReplicationClient::new(connection.transport().await?);
            let replication = call!(
                regions,
                "GetReplicationStatus",
                get_replication_status,
                region_pb::GetReplicationStatusRequest {}
            );
            if let Json::Obj(members) = &mut status {
                members.push(("Replication".to_string(), render_replication(replication)));
            }
            status
        }
        ClusterCommand::AddLearner { node_id, raft_address } => render_membership(call!(
            client,
            "AddLearner",
            add_learner,
            pb::AddLearnerRequest { node_id, raft_address }
        )),
        ClusterCommand::Promote { node_id } => render_membership(call!(
            client,
            "PromoteLearner",
            promote_learner,
            pb::PromoteLearnerRequest { node_id }
        )),
        ClusterCommand::RemoveNode { node_id } => {
            render_membership(call!(client, "RemoveNode", remove_node, pb::RemoveNodeRequest { node_id }))
        }
        ClusterCommand::TransferLeader { node_id } => render_membership(call!(
            client,
            "TransferLeader",
            transfer_leader,
            pb::TransferLeaderRequest { node_id }
        )),
    };
    Ok(json)
}

fn int(v: u64) -> Json {
    Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt(v: Option<u64>) -> Json {
    v.map_or(Json::Null, int)
}

fn ids(v: Vec<u64>) -> Json {
    Json::Arr(v.into_iter().map(int).collect())
}

fn render_status(s: pb::GetClusterStatusResponse) -> Json {
    let nodes = s
        .nodes
        .into_iter()
        .map(|n| {
            let mut members = vec![
                ("NodeId".to_string(), int(n.node_id)),
                ("RaftAddress".to_string(), Json::Str(n.raft_address)),
                ("Role".to_string(), Json::Str(if n.voter { "Voter" } else { "Learner" }.to_string())),
                ("State".to_string(), Json::Str(n.state)),
            ];
            if n.error.is_empty() {
                members.extend([
                    ("Term".to_string(), int(n.term)),
                    ("LeaderId".to_string(), opt(n.leader_id)),
                    ("LastLogIndex".to_string(), opt(n.last_log_index)),
                    ("LastAppliedIndex".to_string(), opt(n.last_applied_index)),
                    ("SnapshotIndex".to_string(), opt(n.snapshot_index)),
                ]);
            } else {
                members.push(("Error".to_string(), Json::Str(n.error)));
            }
            Json::Obj(members)
        })
        .collect();
    Json::Obj(vec![
        ("ReportingNodeId".to_string(), int(s.reporting_node_id)),
        ("LeaderId".to_string(), opt(s.leader_id)),
        ("Term".to_string(), int(s.term)),
        ("Nodes".to_string(), Json::Arr(nodes)),
    ])
}

fn render_replication(r: region_pb::GetReplicationStatusResponse) -> Json {
    let destinations = r
        .destinations
        .into_iter()
        .map(|d| {
            let mut members = vec![
                ("Region".to_string(), Json::Str(d.region)),
                ("OutboxEntries".to_string(), int(d.outbox_entries)),
                ("LagSeconds".to_string(), Json::Str(format!("{:.3}", d.lag_ms as f64 / 1000.0))),
            ];
            if d.last_push_unix_ms > 0 {
                members.push(("LastPushUnixMillis".to_string(), int(d.last_push_unix_ms)));
            }
            if !d.last_error.is_empty() {
                members.push(("LastError".to_string(), Json::Str(d.last_error)));
            }
            Json::Obj(members)
        })
        .collect();
    let sources = r
        .sources
        .into_iter()
        .map(|s| {
            Json::Obj(vec![
                ("Region".to_string(), Json::Str(s.region)),
                ("AppliedThrough".to_string(), int(s.applied_through)),
            ])
        })
        .collect();
    Json::Obj(vec![
        ("Region".to_string(), Json::Str(r.region)),
        ("Destinations".to_string(), Json::Arr(destinations)),
        ("Sources".to_string(), Json::Arr(sources)),
    ])
}

fn render_membership(m: pb::MembershipResponse) -> Json {
    Json::Obj(vec![
        ("LeaderId".to_string(), opt(m.leader_id)),
        ("Voters".to_string(), ids(m.voters)),
        ("Learners".to_string(), ids(m.learners)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_renders_reachable_and_unreachable_nodes() {
        let json = render_status(pb::GetClusterStatusResponse {
            reporting_node_id: 2,
            leader_id: Some(1),
            term: 4,
            nodes: vec![
                pb::NodeStatus {
                    node_id: 1,
                    raft_address: "127.0.0.1:1".into(),
                    voter: true,
                    state: "Leader".into(),
                    term: 4,
                    leader_id: Some(1),
                    last_log_index: Some(9),
                    last_applied_index: Some(9),
                    ..Default::default()
                },
                pb::NodeStatus {
                    node_id: 3,
                    raft_address: "127.0.0.1:3".into(),
                    state: "Unreachable".into(),
                    error: "no answer".into(),
                    ..Default::default()
                },
            ],
        });
        assert_eq!(json.query("Nodes[0].State").unwrap(), Json::Str("Leader".into()));
        assert_eq!(json.query("Nodes[1].Role").unwrap(), Json::Str("Learner".into()));
        assert_eq!(json.query("Nodes[1].Error").unwrap(), Json::Str("no answer".into()));
        assert_eq!(json.query("LeaderId").unwrap(), Json::Int(1));
    }
}
