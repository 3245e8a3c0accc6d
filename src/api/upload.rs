//! A file upload read as layout records while it arrives: the body is counted against
//! `max_batch_bytes`, parsed by a blocking task with the layout's reader, and handed on in
//! chunks, so memory stays bounded by a few chunks whatever the file's size. Used by the
//! imports (`POST /v1/persons:import`, `POST /v1/copies:import`).

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use renkei_convert::{Layout, LayoutReader, LineError, Record};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ApiError;

/// Body pieces buffered between the network and the parser: with hyper's frames of at most a
/// few tens of KiB this bounds the import's read-ahead to about a MiB, whatever the file size.
pub const DEFAULT_PIPE_DEPTH: usize = 32;
/// Parsed chunks buffered between the parser and the store writer: the parser may work one
/// chunk ahead of the commit.
pub const DEFAULT_CHUNK_DEPTH: usize = 2;

/// Parsed lines of one record, good or bad, in file order.
pub type Chunk = Vec<Result<Record, LineError>>;

/// The answer to a file larger than `max` bytes.
pub fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the file is larger than the gateway accepts ({max} bytes, max_batch_bytes)"),
    )
}

/// Refuses at once a body whose `Content-Length` is over `max`.
pub fn check_declared(headers: &HeaderMap, max: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    Ok(())
}

/// A blocking `Read` over body pieces sent by the async side.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// An upload being read: take [`LineStream::chunks`] until it ends, then [`LineStream::finish`].
pub struct LineStream {
    /// Chunks of at most `chunk` parsed lines.
    pub chunks: mpsc::Receiver<Chunk>,
    feeder: JoinHandle<bool>,
    parser: JoinHandle<()>,
}

impl LineStream {
    /// Starts reading `body` with `layout`, in chunks of `chunk` lines; a body over `max`
    /// bytes ends the stream early.
    pub fn start(body: Body, layout: Layout, max: usize, chunk: usize) -> Self {
        let (btx, brx) = mpsc::channel::<std::io::Result<Bytes>>(DEFAULT_PIPE_DEPTH);
        let (ctx, crx) = mpsc::channel::<Chunk>(DEFAULT_CHUNK_DEPTH);
        let feeder = tokio::spawn(async move {
            let mut body = body;
            let mut seen = 0usize;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        let Ok(data) = f.into_data() else { continue };
                        seen += data.len();
                        if seen > max {
                            let _ = btx
                                .send(Err(std::io::Error::other(
                                    "body larger than max_batch_bytes",
                                )))
                                .await;
                            return true;
                        }
                        if btx.send(Ok(data)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = btx.send(Err(std::io::Error::other(e.to_string()))).await;
                        break;
                    }
                }
            }
            false
        });
        let parser = tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(
                64 * 1024,
                ChannelReader {
                    rx: brx,
                    cur: Bytes::new(),
                    done: false,
                },
            );
            let mut part = Vec::with_capacity(chunk);
            for item in LayoutReader::new(&layout, reader) {
                part.push(item);
                if part.len() >= chunk {
                    let full = std::mem::replace(&mut part, Vec::with_capacity(chunk));
                    if ctx.blocking_send(full).is_err() {
                        return;
                    }
                }
            }
            if !part.is_empty() {
                let _ = ctx.blocking_send(part);
            }
        });
        Self {
            chunks: crx,
            feeder,
            parser,
        }
    }

    /// Stops reading (if the caller stopped early) and waits for both sides; true when the
    /// body was larger than `max`.
    pub async fn finish(self) -> bool {
        drop(self.chunks);
        let over = self.feeder.await.unwrap_or(false);
        let _ = self.parser.await;
        over
    }
}
