use std::time::Duration;

use crate::common::{config, get, members, open, wait_status};

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

    // Stop the leader: the other two elect a new one, which accepts proposals.
    let leader = nodes.iter().find(|n| n.node_id() == leader_id).unwrap();
    leader.shutdown().await.unwrap();
    let survivors: Vec<_> = nodes.iter().filter(|n| n.node_id() != leader_id).collect();
    let new_status = wait_status(survivors[0], "a new leader", Duration::from_secs(15), |s| {
        s.leader_id.is_some() && s.leader_id != Some(leader_id)
    })
    .await;
    assert_ne!(new_status.leader_id, Some(leader_id));
    assert!(new_status.term > status.term);

    for (i, node) in survivors.iter().enumerate() {
        let previous = node.propose(format!("put b {i}").into_bytes()).await.unwrap();
        let expected: &[u8] = if i == 0 { b"-" } else { b"0" };
        assert_eq!(previous, expected);
    }
    for node in &survivors {
        node.sync_reads().await.unwrap();
        assert_eq!(get(node, "a").as_deref(), Some("1"));
        assert_eq!(get(node, "b").as_deref(), Some("1"));
    }
    for node in &survivors {
        node.shutdown().await.unwrap();
    }
}
