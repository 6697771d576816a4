//! Bad input and forged signatures against the AWS endpoint of a real `kmsd dev`, signed with
//! botocore's own SigV4 signer (tests/aws/raw_requests.py): AWS error shapes with 4xx statuses,
//! nothing executed on an authentication failure, every operation of botocore's KMS model
//! validating its required members, and the node still serving afterwards (over both APIs).
//!
//! Needs python3 with `boto3`; a missing interpreter or package fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kms_e2e::Node;
use kms_proto::v1 as pb;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[tokio::test]
async fn bad_input_gets_aws_error_shapes_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node")).await;

    let output = node.run_aws_script("raw_requests.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().last().is_some_and(|l| l.starts_with("OK")),
        "raw_requests.py failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok all 54 model operations"), "{stdout}");

    // Raw bytes no client library would send: a huge declared length (refused before reading),
    // garbage instead of HTTP, and a GET. The node answers or closes; it never falls over.
    let exchange = |request: &[u8]| -> String {
        let mut stream = TcpStream::connect(node.aws_listen).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    };
    let huge = exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n{",
    );
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(huge.contains(r#""__type":"ValidationException""#), "{huge}");
    let get = exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(get.starts_with("HTTP/1.1 405") && get.contains("UnknownOperationException"), "{get}");
    let unsigned = exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(
        unsigned.starts_with("HTTP/1.1 403") && unsigned.contains("MissingAuthenticationTokenException"),
        "{unsigned}"
    );
    let garbage = exchange(b"\x00\x01\x02 not http at all\r\n\r\n");
    assert!(garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"), "{garbage}");

    // Still serving, over gRPC too.
    let mut client = node.client().await;
    client.list_keys(pb::ListKeysRequest::default()).await.unwrap();
    let log = node.log_text();
    assert!(!log.contains("panicked"), "kmsd panicked:\n{log}");
}
