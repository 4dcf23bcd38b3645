//! Line framing of the registration phase: `\n`-separated lines, blank ones skipped, each at most
//! a limit the caller chooses per line (tiny before the handshake). A line over the limit is
//! refused as soon as the limit is passed, without waiting for its end. What was read past the
//! last line is handed on to the event reader of the next phase.

use tokio::io::{AsyncRead, AsyncReadExt};

const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FramingError {
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct Framer<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of `buf` known to hold no `\n`.
    scanned: usize,
}

impl<R: AsyncRead + Unpin> Framer<R> {
    pub(crate) fn new(reader: R) -> Self {
        Framer {
            reader,
            buf: Vec::new(),
            scanned: 0,
        }
    }

    /// The next non-blank line (without `\n`) of at most `limit` bytes; `None` at end of stream.
    pub(crate) async fn next_line(
        &mut self,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, FramingError> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                self.scanned = 0;
                line.pop();
                if line.len() > limit {
                    return Err(FramingError::TooLong(limit));
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > limit {
                return Err(FramingError::TooLong(limit));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.reader.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The bytes read past the last line, and the reader.
    pub(crate) fn into_parts(self) -> (Vec<u8>, R) {
        (self.buf, self.reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_blank_lines_limits_and_leftovers() {
        let data: &[u8] = b"one\n\n\ntwo\r\nthree\nrest";
        let mut f = Framer::new(data);
        assert_eq!(f.next_line(10).await.expect("1"), Some(b"one".to_vec()));
        assert_eq!(f.next_line(10).await.expect("2"), Some(b"two\r".to_vec()));
        assert_eq!(f.next_line(10).await.expect("3"), Some(b"three".to_vec()));
        let (rest, _) = f.into_parts();
        assert_eq!(rest, b"rest");

        let long = [b'x'; 100];
        let mut f = Framer::new(&long[..]);
        assert!(matches!(
            f.next_line(10).await,
            Err(FramingError::TooLong(10))
        ));
        let mut f = Framer::new(&b"0123456789abc\n"[..]);
        assert!(matches!(
            f.next_line(10).await,
            Err(FramingError::TooLong(10))
        ));
        let mut f = Framer::new(&b""[..]);
        assert_eq!(f.next_line(10).await.expect("eof"), None);
    }
}
