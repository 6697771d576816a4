use std::time::Duration;

use kms_replication::RegionConfig;

use crate::common::{config, get, members, open, wait_status};

/// A region of two whose second member's address is held by a node that is not that member (of
/// another region, or another node of this one): a pod IP or port handed on. That node takes
/// none of the region's Raft messages, so it neither votes the first node in nor joins its log.
/// (Without addressing it would grant its vote, being blank, and become a follower of a region
/// it does not belong to.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_a_members_address_that_is_not_that_member_takes_none_of_its_messages() {
    for (region_suffix, node_id_there) in [("-other", 2), ("", 3)] {
        let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let node1 = open(config(1, dir1.path())).await;
        let base = config(node_id_there, dir2.path());
        let stranger = open(RegionConfig { region: format!("{}{region_suffix}", base.region), ..base }).await;
        let addresses = [(1, node1.raft_addr().to_string()), (2, stranger.raft_addr().to_string())];
        node1.initialize(addresses.into_iter().collect()).await.unwrap();

        // Several election timeouts (300-600 ms in these tests).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let status = node1.status();
        assert_eq!(status.leader_id, None, "{region_suffix} {node_id_there}: {status:?}");
        let status = stranger.status();
        assert!(status.voters.is_empty() && status.last_log_index.is_none(), "{status:?}");
        assert_eq!(status.term, 0, "{status:?}");
        node1.shutdown().await.unwrap();
        stranger.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_forward_replicate_and_fail_over() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(open(config(i as u64 + 1, dir.path())).await);
    }
    let all = members(&nodes.iter().collect::<Vec<_>>());
    nodes[0].initialize(all).await.unwrap();

    let status = wait_status(&nodes[0], "a leader", Duration::from_secs(10), |s| {
        s.leader_id.is_some() && s.voters.len() == 3
    })
    .await;
    let leader_id = status.leader_id.unwrap();
    for node in &nodes {
        wait_status(node, "leader known", Duration::from_secs(10), |s| s.leader_id == Some(leader_id)).await;
    }
    let follower = nodes.iter().find(|n| n.node_id() != leader_id).unwrap();
    assert!(!follower.is_leader());

    // A follower forwards the proposal and answers only once it applied it itself.
    let previous = follower.propose(b"put a 1".to_vec()).await.unwrap();
    assert_eq!(previous, b"-");
    assert_eq!(get(follower, "a").as_deref(), Some("1"));
    for node in &nodes {
        node.sync_reads().await.unwrap();
        assert_eq!(get(node, "a").as_deref(), Some("1"), "node {}", node.node_id());
    }

    // Stop the leader. A proposal made at once, while the survivors still name the old leader,
    // waits for the election instead of failing on the dead leader's closed port.
    let leader = nodes.iter().find(|n| n.node_id() == leader_id).unwrap();
    leader.shutdown().await.unwrap();
    let survivors: Vec<_> = nodes.iter().filter(|n| n.node_id() != leader_id).collect();
    let previous = survivors[0].propose(b"put b 0".to_vec()).await.unwrap();
    assert_eq!(previous, b"-");
    let new_status = survivors[1].status();
    assert_ne!(new_status.leader_id, Some(leader_id));
    assert!(new_status.term > status.term);

    let previous = survivors[1].propose(b"put b 1".to_vec()).await.unwrap();
    assert_eq!(previous, b"0");
    for node in &survivors {
        node.sync_reads().await.unwrap();
        assert_eq!(get(node, "a").as_deref(), Some("1"));
        assert_eq!(get(node, "b").as_deref(), Some("1"));
    }
    for node in &survivors {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_and_leadership_changes_from_any_node() {
    use kms_replication::ClusterChange;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate().take(3) {
        nodes.push(open(config(i as u64 + 1, dir.path())).await);
    }
    nodes[0].initialize(members(&nodes.iter().collect::<Vec<_>>())).await.unwrap();
    let status = wait_status(&nodes[0], "a leader", Duration::from_secs(10), |s| s.leader_id.is_some()).await;
    let leader = status.leader_id.unwrap();
    let follower = nodes.iter().find(|n| n.node_id() != leader).unwrap().clone();
    follower.propose(b"put a 1".to_vec()).await.unwrap();

    // Leadership moves to the node asked, even when a follower is asked.
    let target =
        nodes.iter().map(|n| n.node_id()).find(|id| *id != leader && *id != follower.node_id()).unwrap();
    let view = follower.change_cluster(ClusterChange::TransferLeader { node_id: target }).await.unwrap();
    assert_eq!(view.leader_id, Some(target));

    // A new node joins as a learner, then votes; both requests sent to a follower.
    let node4 = open(config(4, dirs[3].path())).await;
    let addr4 = node4.raft_addr().to_string();
    let asked = nodes.iter().find(|n| n.node_id() != target).unwrap().clone();
    let reused =
        asked.change_cluster(ClusterChange::AddLearner { node_id: 2, raft_addr: addr4.clone() }).await;
    assert!(matches!(reused, Err(kms_replication::ReplicationError::Invalid { .. })), "{reused:?}");
    let view =
        asked.change_cluster(ClusterChange::AddLearner { node_id: 4, raft_addr: addr4 }).await.unwrap();
    assert!(view.learners.contains(&4));
    let view = asked.change_cluster(ClusterChange::Promote { node_id: 4 }).await.unwrap();
    assert_eq!(view.voters.len(), 4);
    // A local read on the new voter sees what it has applied: wait for it to catch up first
    // (under load, applying can trail the membership change the asked node waited for).
    node4.sync_reads().await.unwrap();
    assert_eq!(get(&node4, "a").as_deref(), Some("1"));

    // Removing the leader hands leadership over first.
    let view = asked.change_cluster(ClusterChange::Remove { node_id: target }).await.unwrap();
    assert!(!view.voters.contains(&target) && !view.learners.contains(&target), "{view:?}");
    assert!(view.leader_id.is_some_and(|l| l != target));
    let status = asked.cluster_status().await;
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|m| m.report.is_ok()), "{status:?}");

    node4.shutdown().await.unwrap();
    for node in &nodes {
        node.shutdown().await.unwrap();
    }
}
