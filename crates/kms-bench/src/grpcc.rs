//! The gRPC driver's client: unary kms.v1 calls straight over one h2 connection.
//!
//! On a two-core machine the load generator's CPU is taken from the server it measures, so its
//! cost per call moves every figure. tonic's client reaches the socket through a `Channel`
//! (a buffer queue with its own worker task, load balancing) and hyper's HTTP/2 client (a
//! dispatch queue to the connection task, and one spawned task per request to pipe the request
//! body). A load client owns its connection and makes one call at a time, so here a call
//! sends its request head and its one message on the h2 stream itself and reads the answer:
//! per-process CPU accounting put tonic's client at a third more per call than the HTTP/1.1
//! client of the AWS JSON driver. The baseline server is loaded through this client too, so
//! the ratio to it stays like for like.
//!
//! gRPC's framing is all there is to it: a 5-byte prefix (not compressed, big-endian length)
//! before the protobuf message, `grpc-status` in the trailers (or in the head of an answer that
//! has no message), which [`tonic::Status::from_header_map`] reads with its metadata (kmsd's
//! exception name among them).

use anyhow::{Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use kms_proto::v1::key_management_service_server::SERVICE_NAME;
use tonic::{Code, Status};

/// Bytes before a message: the compressed flag and the message's length.
const PREFIX_LEN: usize = 5;

/// A kmsd gRPC client on its own HTTP/2 connection.
pub struct Client {
    sender: SendRequest<Bytes>,
    authority: http::uri::Authority,
}

/// Connects to `endpoint` (`http://host:port`, checked loopback by the caller).
pub async fn connect(endpoint: &str) -> Result<Client> {
    let origin: http::Uri = endpoint.parse().with_context(|| format!("parsing {endpoint}"))?;
    let authority = origin.authority().context("the endpoint has no host:port")?.clone();
    let stream = crate::httpc::tcp(authority.as_str()).await?;
    let (sender, connection) =
        h2::client::handshake(stream).await.with_context(|| format!("HTTP/2 handshake with {endpoint}"))?;
    // The connection task ends when the sender is dropped or the server closes the connection;
    // a call on a closed connection fails and is counted by its error.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Client { sender, authority })
}

impl Client {
    /// Calls `method` of kms.v1.KeyManagementService with `request`; a non-OK answer is the
    /// status kmsd sent.
    pub async fn call<A: prost::Message + Default>(
        &mut self,
        method: &str,
        request: &impl prost::Message,
    ) -> Result<A, Status> {
        let uri = http::Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(format!("/{SERVICE_NAME}/{method}"))
            .build()
            .map_err(|e| Status::internal(format!("request URI: {e}")))?;
        let head = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .map_err(|e| Status::internal(format!("request head: {e}")))?;
        std::future::poll_fn(|cx| self.sender.poll_ready(cx)).await.map_err(transport)?;
        let (answer, mut body) = self.sender.send_request(head, false).map_err(transport)?;
        body.send_data(frame(request), true).map_err(transport)?;
        let (head, mut body) = answer.await.map_err(transport)?.into_parts();
        // An error without a message comes as the head alone ("trailers-only").
        if let Some(status) = Status::from_header_map(&head.headers) {
            return Err(if status.code() == Code::Ok {
                Status::internal("an OK answer without a message")
            } else {
                status
            });
        }
        if head.status != http::StatusCode::OK {
            return Err(Status::unknown(format!("HTTP {}", head.status.as_u16())));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            body.flow_control().release_capacity(chunk.len()).map_err(transport)?;
            message.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(transport)?.unwrap_or_default();
        match Status::from_header_map(&trailers) {
            Some(status) if status.code() == Code::Ok => unframe(message.freeze()),
            Some(status) => Err(status),
            None => Err(Status::internal("the answer ended without grpc-status")),
        }
    }
}

/// `message` with gRPC's prefix.
fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
    buf.put_u8(0);
    // A kms request is at most a few KiB: its length fits the prefix's 32 bits.
    buf.put_u32(len as u32);
    message.encode_raw(&mut buf);
    buf.freeze()
}

/// The one message of an answer.
fn unframe<A: prost::Message + Default>(mut answer: Bytes) -> Result<A, Status> {
    if answer.len() < PREFIX_LEN {
        return Err(Status::internal("an answer shorter than its gRPC prefix"));
    }
    if answer.get_u8() != 0 {
        return Err(Status::internal("a compressed answer (none was asked for)"));
    }
    let len = answer.get_u32() as usize;
    if answer.len() != len {
        return Err(Status::internal(format!(
            "an answer of {} bytes where the prefix says {len}",
            answer.len()
        )));
    }
    A::decode(answer).map_err(|e| Status::internal(format!("decoding the answer: {e}")))
}

/// A connection-level failure, named like tonic names its transport errors.
fn transport(error: h2::Error) -> Status {
    Status::unavailable(format!("HTTP/2: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kms_proto::v1 as pb;
    use prost::Message as _;

    #[test]
    fn a_framed_message_unframes_to_itself() {
        let request =
            pb::EncryptRequest { key_id: "alias/x".into(), plaintext: vec![1, 2, 3], ..Default::default() };
        let framed = frame(&request);
        assert_eq!(&framed[..PREFIX_LEN], &[0, 0, 0, 0, request.encoded_len() as u8]);
        assert_eq!(unframe::<pb::EncryptRequest>(framed).unwrap(), request);
    }

    #[test]
    fn a_short_compressed_or_mislabelled_answer_is_an_error() {
        let framed = frame(&pb::EncryptRequest { key_id: "k".into(), ..Default::default() });
        assert!(unframe::<pb::EncryptRequest>(framed.slice(..3)).is_err());
        assert!(unframe::<pb::EncryptRequest>(framed.slice(..framed.len() - 1)).is_err());
        let mut compressed = framed.to_vec();
        compressed[0] = 1;
        assert!(unframe::<pb::EncryptRequest>(compressed.into()).is_err());
    }
}
