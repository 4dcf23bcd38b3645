//! A tolerant line reader over any [`AsyncRead`].
//!
//! Plugins frame their output as JSON followed by `\n\n`, log lines end with a single `\n`, and
//! `print()` output may appear anywhere. Splitting on `\n`, dropping one trailing `\r` and
//! skipping empty lines is the only robust framing. A line longer than the configured maximum is
//! discarded and reported as [`FrameError::TooLong`], and reading continues with the next line:
//! one huge message must not take the whole plugin down (upstream ends the stream there).

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Default per-line cap: 256 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// How many leading bytes of an oversized line are kept for diagnostics.
const TOO_LONG_HEAD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// One line exceeded the maximum; it was skipped, the stream goes on.
    #[error("line of {len} bytes exceeds the maximum of {max} bytes and was skipped")]
    TooLong {
        len: usize,
        max: usize,
        /// The first bytes of the skipped line, to find out whom it was meant for.
        head: Bytes,
    },
    /// Reading failed; the stream is over.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into non-empty lines.
pub struct LineReader<R> {
    inner: BufReader<R>,
    max_line_bytes: usize,
    buf: Vec<u8>,
    /// Set while discarding the rest of an oversized line: its length so far.
    discarding: Option<usize>,
    done: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_max_line_bytes(reader, DEFAULT_MAX_LINE_BYTES)
    }

    pub fn with_max_line_bytes(reader: R, max_line_bytes: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, reader),
            max_line_bytes: max_line_bytes.max(1),
            buf: Vec::new(),
            discarding: None,
            done: false,
        }
    }

    /// The next non-empty line without its terminator; `None` at end of stream.
    ///
    /// After an [`FrameError::Io`] the stream is over; after [`FrameError::TooLong`] it is not.
    /// Cancel-safe: bytes already consumed stay buffered in `self`.
    pub async fn next_line(&mut self) -> Option<Result<Bytes, FrameError>> {
        loop {
            if self.done {
                return None;
            }
            let available = match self.inner.fill_buf().await {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Some(Err(FrameError::Io(e)));
                }
            };
            if available.is_empty() {
                self.done = true;
                // End of stream: a last line without `\n` still counts.
                if let Some(len) = self.discarding.take() {
                    return Some(Err(self.too_long(len)));
                }
                if let Some(line) = self.take_line() {
                    return Some(Ok(line));
                }
                return None;
            }
            let (chunk_len, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            match self.discarding.as_mut() {
                Some(len) => *len += chunk_len,
                None => {
                    if self.buf.len() + chunk_len > self.max_line_bytes {
                        let keep = TOO_LONG_HEAD_BYTES
                            .saturating_sub(self.buf.len())
                            .min(chunk_len);
                        self.buf.extend_from_slice(&available[..keep]);
                        self.discarding = Some(self.buf.len() - keep + chunk_len);
                        self.buf.truncate(TOO_LONG_HEAD_BYTES);
                    } else {
                        self.buf.extend_from_slice(&available[..chunk_len]);
                    }
                }
            }
            self.inner.consume(chunk_len + usize::from(found_newline));
            if found_newline {
                if let Some(len) = self.discarding.take() {
                    return Some(Err(self.too_long(len)));
                }
                if let Some(line) = self.take_line() {
                    return Some(Ok(line));
                }
            }
        }
    }

    fn too_long(&mut self, len: usize) -> FrameError {
        let mut head = std::mem::take(&mut self.buf);
        head.truncate(TOO_LONG_HEAD_BYTES);
        FrameError::TooLong {
            len,
            max: self.max_line_bytes,
            head: Bytes::from(head),
        }
    }

    /// Takes the buffered line, dropping one trailing `\r`; `None` for a blank line.
    fn take_line(&mut self) -> Option<Bytes> {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        Some(Bytes::from(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(input: &[u8], max: usize) -> Vec<Result<String, String>> {
        let mut reader = LineReader::with_max_line_bytes(input, max);
        let mut out = Vec::new();
        while let Some(item) = reader.next_line().await {
            out.push(match item {
                Ok(line) => Ok(String::from_utf8_lossy(&line).into_owned()),
                Err(FrameError::TooLong { len, .. }) => Err(format!("too long {len}")),
                Err(e) => Err(e.to_string()),
            });
        }
        out
    }

    #[tokio::test]
    async fn splits_skips_blank_and_drops_one_cr() {
        let lines = collect(b"{\"a\":1}\n\n{\"b\":2}\r\n\r\n  \nlast", 100).await;
        assert_eq!(
            lines,
            vec![
                Ok("{\"a\":1}".into()),
                Ok("{\"b\":2}".into()),
                Ok("last".into())
            ]
        );
    }

    #[tokio::test]
    async fn oversized_line_is_reported_and_skipped() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 50));
        input.extend_from_slice(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 30));
        let lines = collect(&input, 20).await;
        assert_eq!(
            lines,
            vec![
                Ok("short".into()),
                Err("too long 50".into()),
                Ok("after".into()),
                Err("too long 30".into())
            ]
        );
    }

    #[tokio::test]
    async fn line_at_exact_max_passes_and_big_lines_cross_buffers() {
        let big = "z".repeat(200_000);
        let input = format!("{big}\nnext\n");
        let lines = collect(input.as_bytes(), 200_000).await;
        assert_eq!(lines, vec![Ok(big), Ok("next".into())]);
    }

    #[tokio::test]
    async fn too_long_keeps_a_head() {
        let input = format!(
            "{{\"session_id\":\"s1\",\"data\":\"{}\"}}\n",
            "q".repeat(5000)
        );
        let mut reader = LineReader::with_max_line_bytes(input.as_bytes(), 100);
        match reader.next_line().await {
            Some(Err(FrameError::TooLong { head, .. })) => {
                assert!(head.starts_with(b"{\"session_id\":\"s1\""));
                assert_eq!(head.len(), 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(reader.next_line().await.is_none());
    }
}
