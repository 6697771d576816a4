//! Client connections whose writes reach the socket once per flush of the HTTP/2 codec.
//!
//! h2 (under tonic) encodes frames into its own buffer, except a DATA payload of 256 bytes or
//! more on a connection that takes vectored writes: that payload is kept aside and written with
//! the buffer in one `writev`, and until that write is done no further frame can be buffered.
//! A unary gRPC answer is HEADERS, DATA, then the trailers, so every answer whose message is
//! 256 bytes or more (an RSA signature, a data key, a 4 KiB ciphertext) left in two writes, two
//! trips through the kernel's TCP stack, where a smaller one leaves in one. Measured on an RSA-2048
//! Sign load: two `writev` per answer, the second one 10 bytes.
//!
//! Here the connection tells h2 it does not take vectored writes (so h2 copies payloads under
//! 1 KiB into its buffer) and gathers what h2 writes in a [`BufWriter`] that reaches the socket
//! only when h2 flushes: one write per answer up to 1 KiB, and for larger ones the
//! payload rides with the frames buffered before it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tonic::transport::server::Connected;

/// Room for an answer to a 4 KiB operation with its frames (h2 buffers up to 16 KiB itself).
const GATHER_CAPACITY: usize = 8 * 1024;

/// A connection whose writes are gathered until the writer flushes.
pub struct Coalesced<T> {
    inner: BufWriter<T>,
}

impl<T: AsyncWrite> Coalesced<T> {
    pub fn new(io: T) -> Self {
        Self { inner: BufWriter::with_capacity(GATHER_CAPACITY, io) }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored, so that h2 copies answers under 1 KiB into its buffer instead of holding
    /// their payload aside (see the module comment); the gathering makes up for the rest.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<T: Connected + AsyncWrite> Connected for Coalesced<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::Frame;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::io::IoSlice;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::DuplexStream;

    /// One end of an in-memory pipe that, like a TCP socket, takes vectored writes, and counts the
    /// writes that reach it (a `writev` counts once).
    struct CountedWrites {
        io: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for CountedWrites {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountedWrites {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let written = Pin::new(&mut self.io).poll_write(cx, buf);
            if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            written
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let gathered: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &gathered)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// Serves HTTP/2 on `io`: every answer is a 300-byte message and trailers, the shape of a
    /// unary gRPC answer with an RSA signature in it.
    fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) {
        let service = hyper::service::service_fn(|_request| async {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
                vec![Ok(Frame::data(Bytes::from(vec![7u8; 300]))), Ok(Frame::trailers(trailers))];
            Ok::<_, std::convert::Infallible>(http::Response::new(StreamBody::new(tokio_stream::iter(
                frames,
            ))))
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service),
        );
    }

    /// The writes that reach the server's socket while it answers one request (the connection's
    /// set-up done by a first request).
    async fn writes_per_answer(coalesce: bool) -> usize {
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let writes = Arc::new(AtomicUsize::new(0));
        let counted = CountedWrites { io: server_end, writes: writes.clone() };
        if coalesce {
            serve(Coalesced::new(counted));
        } else {
            serve(counted);
        }
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_end))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut before = 0;
        for _ in 0..2 {
            before = writes.load(Ordering::SeqCst);
            let request =
                http::Request::post("http://kmsd/answer").body(Full::new(Bytes::from_static(b"q"))).unwrap();
            let answer = sender.send_request(request).await.unwrap().into_body().collect().await.unwrap();
            assert!(answer.trailers().is_some(), "the answer's trailers arrived");
            assert_eq!(answer.to_bytes().len(), 300);
        }
        writes.load(Ordering::SeqCst) - before
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_with_its_trailers_leaves_in_one_write() {
        assert_eq!(writes_per_answer(true).await, 1);
    }

    /// The control: without the wrapper, h2 holds the 300-byte payload aside and writes the
    /// trailers separately.
    #[tokio::test(flavor = "current_thread")]
    async fn without_gathering_the_same_answer_takes_two_writes() {
        assert_eq!(writes_per_answer(false).await, 2);
    }
}
