//! The client's retry, failover and routing machinery against in-process gRPC servers that
//! answer from a script and record what they were sent. (The real thing, kmsd processes under
//! SIGKILL and SIGSTOP, is in the end-to-end tests `client_failover` and `client_regions`; here
//! the failures are exact, so what must *not* be retried can be checked attempt by attempt.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Buf as _, BufMut as _};
use kms_client::client::{Client, Idempotency, RetryPolicy, Settings, Stop};
use kms_proto::v1 as pb;
use prost::Message;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::{Code, Status};

const MRK: &str = "mrk-0123456789abcdef0123456789abcdef";

/// One scripted answer.
#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// A status with an AWS exception name (`x-kms-exception`), or a bare one.
    Fail(Code, Option<&'static str>),
    /// Never answers.
    Hang,
}

fn ok(message: impl Message) -> Reply {
    Reply::Ok(message.encode_to_vec())
}

/// (method name, encoded request) of every request a scripted server received, in order.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A kms.v1 server answering each method from its script (then with an empty success), and
/// recording every request it received.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<HashMap<&'static str, VecDeque<Reply>>>>,
    received: Received,
}

impl Scripted {
    fn on(&self, method: &'static str, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script.lock().unwrap().entry(method).or_default().extend(replies);
        self
    }

    /// The requests of `method` received so far, decoded.
    fn received<M: Message + Default>(&self, method: &str) -> Vec<M> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, bytes)| M::decode(bytes.as_slice()).unwrap())
            .collect()
    }

    fn count(&self, method: &str) -> usize {
        self.received.lock().unwrap().iter().filter(|(m, _)| m == method).count()
    }

    async fn answer(&self, method: String, body: Vec<u8>) -> Result<Vec<u8>, Status> {
        let reply = self.script.lock().unwrap().get_mut(method.as_str()).and_then(VecDeque::pop_front);
        self.received.lock().unwrap().push((method, body));
        match reply.unwrap_or(Reply::Ok(Vec::new())) {
            Reply::Ok(bytes) => Ok(bytes),
            Reply::Fail(code, exception) => {
                let mut status = Status::new(code, "scripted failure");
                if let Some(name) = exception {
                    status.metadata_mut().insert(kms_proto::EXCEPTION_METADATA_KEY, name.parse().unwrap());
                }
                Err(status)
            }
            Reply::Hang => std::future::pending().await,
        }
    }

    /// Serves on a fresh loopback port; returns the endpoint.
    async fn serve(&self) -> String {
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = incoming.local_addr().unwrap();
        let router = tonic::transport::Server::builder().add_service(self.clone());
        tokio::spawn(router.serve_with_incoming(incoming));
        address.to_string()
    }
}

impl tonic::server::NamedService for Scripted {
    const NAME: &'static str = "kms.v1.KeyManagementService";
}

impl Service<http::Request<tonic::body::Body>> for Scripted {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        let handler = Handler { server: self.clone(), method };
        Box::pin(async move { Ok(tonic::server::Grpc::new(RawCodec).unary(handler, request).await) })
    }
}

struct Handler {
    server: Scripted,
    method: String,
}

impl tonic::server::UnaryService<Vec<u8>> for Handler {
    type Response = Vec<u8>;
    type Future = BoxFuture<tonic::Response<Vec<u8>>, Status>;

    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let (server, method) = (self.server.clone(), self.method.clone());
        Box::pin(async move { server.answer(method, request.into_inner()).await.map(tonic::Response::new) })
    }
}

/// Messages as raw bytes: the script decides what they mean.
#[derive(Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// A loopback endpoint where nothing listens.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Quick settings: short deadlines and backoffs, so the tests take milliseconds.
fn quick() -> Settings {
    Settings {
        timeout: Duration::from_secs(5),
        attempt_timeout: Duration::from_millis(300),
        retry: RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        },
        ..Settings::default()
    }
}

fn client(regions: &[(&str, Vec<String>)]) -> Client {
    let builder =
        regions.iter().fold(Client::builder(), |b, (name, endpoints)| b.region(*name, endpoints.clone()));
    builder.settings(quick()).build().unwrap()
}

fn key_arn(region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:111122223333:key/{key_id}")
}

fn blob_of(key_id: &str) -> Vec<u8> {
    let mut blob = vec![0x01, key_id.len() as u8];
    blob.extend_from_slice(key_id.as_bytes());
    blob.extend_from_slice(&[0; 32]);
    blob
}

fn metadata(key_id: &str, primary: &str, replicas: &[&str]) -> pb::KeyMetadata {
    let key = |region: &str| pb::MultiRegionKey { arn: key_arn(region, key_id), region: region.into() };
    pb::KeyMetadata {
        key_id: key_id.into(),
        multi_region_configuration: Some(pb::MultiRegionConfiguration {
            primary_key: Some(key(primary)),
            replica_keys: replicas.iter().map(|r| key(r)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_key_retries_transient_and_throttled_failures_with_one_token() {
    let server = Scripted::default();
    let created = pb::CreateKeyResponse {
        key_metadata: Some(pb::KeyMetadata { key_id: "k1".into(), ..Default::default() }),
    };
    server.on(
        "CreateKey",
        [
            Reply::Fail(Code::Unavailable, Some("DependencyTimeoutException")),
            Reply::Fail(Code::ResourceExhausted, Some("ThrottlingException")),
            Reply::Fail(Code::Unknown, None),
            ok(created),
        ],
    );
    let kms = client(&[("a", vec![server.serve().await])]);
    let key = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap();
    assert_eq!(key.key_id, "k1");
    let tokens: Vec<Option<String>> = server
        .received::<pb::CreateKeyRequest>("CreateKey")
        .into_iter()
        .map(|r| r.idempotency_token)
        .collect();
    assert_eq!(tokens.len(), 4);
    assert!(tokens[0].as_ref().is_some_and(|t| t.len() == 36), "a UUID: {tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for every attempt: {tokens:?}");
    let stats = kms.stats();
    assert_eq!((stats.retries_unknown_outcome, stats.retries_throttled), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn final_answers_and_unknown_outcomes_of_unsafe_operations_are_not_retried() {
    let server = Scripted::default();
    server
        .on("Encrypt", [Reply::Fail(Code::InvalidArgument, Some("ValidationException"))])
        .on("CreateAlias", [Reply::Fail(Code::ResourceExhausted, Some("LimitExceededException"))])
        .on("RotateKeyOnDemand", [Reply::Fail(Code::Unavailable, Some("DependencyTimeoutException"))])
        .on("CreateKey", [Reply::Fail(Code::Internal, Some("KMSInternalException"))]);
    let kms = client(&[("a", vec![server.serve().await])]);

    let err = kms.encrypt(pb::EncryptRequest { key_id: "k".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!((err.exception(), err.attempts(), err.stop()), (Some("ValidationException"), 1, Stop::Final));
    let err = kms.send(pb::CreateAliasRequest::default()).await.unwrap_err();
    assert_eq!((err.exception(), err.stop()), (Some("LimitExceededException"), Stop::Final));
    let err = kms.send(pb::RotateKeyOnDemandRequest { key_id: "k".into() }).await.unwrap_err();
    assert_eq!((err.attempts(), err.stop()), (1, Stop::NotIdempotent), "{err}");
    // Through the generic path, CreateKey without a token is not idempotent either.
    let err = kms.send(pb::CreateKeyRequest::default()).await.unwrap_err();
    assert_eq!((err.attempts(), err.stop()), (1, Stop::NotIdempotent), "{err}");
    for method in ["Encrypt", "CreateAlias", "RotateKeyOnDemand", "CreateKey"] {
        assert_eq!(server.count(method), 1, "{method}");
    }
    assert!(err.to_string().contains("KMSInternalException"), "{err}");
}

#[tokio::test]
async fn unsafe_operations_are_retried_when_nothing_ran() {
    let server = Scripted::default();
    server.on("RotateKeyOnDemand", [Reply::Fail(Code::ResourceExhausted, Some("ThrottlingException"))]);
    let kms = client(&[("a", vec![dead_endpoint(), server.serve().await])]);
    // Refused connection on the first node, throttled on the second, then done.
    kms.send(pb::RotateKeyOnDemandRequest { key_id: "k".into() }).await.unwrap();
    assert_eq!(server.count("RotateKeyOnDemand"), 2);
    let stats = kms.stats();
    assert_eq!((stats.retries_not_sent, stats.retries_throttled), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn a_hanging_node_costs_one_attempt_deadline_then_is_tried_last() {
    let (slow, fast) = (Scripted::default(), Scripted::default());
    slow.on("Encrypt", [Reply::Hang, Reply::Hang]);
    let kms = client(&[("a", vec![slow.serve().await, fast.serve().await])]);
    let encrypt = || kms.encrypt(pb::EncryptRequest { key_id: "k".into(), ..Default::default() });
    let started = Instant::now();
    encrypt().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for the attempt deadline");
    let started = Instant::now();
    encrypt().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300), "the suspect node was not tried first");
    assert_eq!((slow.count("Encrypt"), fast.count("Encrypt")), (1, 2));
}

#[tokio::test]
async fn a_call_ends_at_its_deadline() {
    let server = Scripted::default();
    server.on("Decrypt", std::iter::repeat_n(Reply::Hang, 10));
    let kms = client(&[("a", vec![server.serve().await])]);
    let options = kms_client::client::CallOptions::default().timeout(Duration::from_millis(700));
    let started = Instant::now();
    let err = kms.send_with(pb::DecryptRequest::default(), &options).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
    assert_eq!(err.stop(), Stop::Deadline, "{err}");
    // Whichever gives up first: the client's timer, or the server on the `grpc-timeout` it got.
    assert!([Code::DeadlineExceeded, Code::Cancelled].contains(&err.code()), "{err}");
    assert!(err.attempts() >= 2, "{err}");
}

#[tokio::test]
async fn crypto_on_a_multi_region_key_fails_over_to_another_region_with_the_arn_rewritten() {
    let (b, c) = (Scripted::default(), Scripted::default());
    b.on("Decrypt", [Reply::Fail(Code::NotFound, Some("NotFoundException"))]);
    let kms =
        client(&[("a", vec![dead_endpoint()]), ("b", vec![b.serve().await]), ("c", vec![c.serve().await])]);

    let request = pb::EncryptRequest { key_id: key_arn("a", MRK), ..Default::default() };
    kms.encrypt(request).await.unwrap();
    let sent: Vec<String> =
        b.received::<pb::EncryptRequest>("Encrypt").into_iter().map(|r| r.key_id).collect();
    assert_eq!(sent, [key_arn("b", MRK)], "region a is down; b got its own ARN");

    // Decrypt names the key in its blob; a region without the key is skipped, not fatal.
    let decrypt = pb::DecryptRequest { ciphertext_blob: blob_of(MRK), ..Default::default() };
    kms.decrypt(decrypt).await.unwrap();
    assert_eq!((b.count("Decrypt"), c.count("Decrypt")), (1, 1));
    assert_eq!(kms.stats().regions_skipped, 1);

    // A single-Region key lives in one region: no failover.
    let options = kms_client::client::CallOptions::default().timeout(Duration::from_millis(300));
    let single = pb::DecryptRequest {
        ciphertext_blob: blob_of("1234abcd-12ab-34cd-56ef-1234567890ab"),
        ..Default::default()
    };
    let err = kms.send_with(single, &options).await.unwrap_err();
    assert!(err.endpoint().unwrap().contains("(a)"), "{err}");
    assert_eq!((b.count("Decrypt"), c.count("Decrypt")), (1, 1));
}

#[tokio::test]
async fn management_of_a_multi_region_key_goes_to_the_primary_learnt_from_describe_key() {
    let (a, b) = (Scripted::default(), Scripted::default());
    let described = pb::DescribeKeyResponse { key_metadata: Some(metadata(MRK, "b", &["a"])) };
    a.on("DescribeKey", [ok(described.clone()), ok(described)]);
    let kms = client(&[("a", vec![a.serve().await]), ("b", vec![b.serve().await])]);

    kms.send(pb::EnableKeyRotationRequest { key_id: MRK.into(), ..Default::default() }).await.unwrap();
    kms.send(pb::DisableKeyRotationRequest { key_id: MRK.into() }).await.unwrap();
    assert_eq!(a.count("DescribeKey"), 1, "learnt once, then cached");
    assert_eq!((b.count("EnableKeyRotation"), b.count("DisableKeyRotation")), (1, 1));
    assert_eq!(kms.primary_region(MRK).await.unwrap(), "b");
    // An ARN names the region meant; a crypto call still goes home.
    kms.send(pb::DisableKeyRequest { key_id: key_arn("a", MRK) }).await.unwrap();
    assert_eq!(a.count("DisableKey"), 1);
    kms.encrypt(pb::EncryptRequest { key_id: MRK.into(), ..Default::default() }).await.unwrap();
    assert_eq!((a.count("Encrypt"), b.count("Encrypt")), (1, 0));
    // Changing the primary forgets what was learnt.
    kms.send(pb::UpdatePrimaryRegionRequest { key_id: MRK.into(), primary_region: "a".into(), force: None })
        .await
        .unwrap();
    kms.send(pb::EnableKeyRequest { key_id: MRK.into() }).await.unwrap();
    assert_eq!(a.count("DescribeKey"), 2);
}

#[tokio::test]
async fn the_idempotency_of_one_call_can_be_overridden() {
    let server = Scripted::default();
    server.on("RotateKeyOnDemand", [Reply::Fail(Code::Unavailable, Some("DependencyTimeoutException"))]);
    let kms = client(&[("a", vec![server.serve().await])]);
    let options = kms_client::client::CallOptions::default().idempotency(Idempotency::Idempotent);
    kms.send_with(pb::RotateKeyOnDemandRequest { key_id: "k".into() }, &options).await.unwrap();
    assert_eq!(server.count("RotateKeyOnDemand"), 2);
    let unknown = kms_client::client::CallOptions::default().region("nowhere");
    let err = kms.send_with(pb::ListKeysRequest::default(), &unknown).await.unwrap_err();
    assert!(err.to_string().contains("not configured"), "{err}");
}
