//! Dify's length-prefixed stream framing (plugin-protocol §4.4): a 14-byte header (magic `0x0F`,
//! one reserved byte, header length `10` little-endian u16, payload length little-endian u32, six
//! reserved bytes) followed by the payload.

use bytes::{Buf, BytesMut};

/// First byte of every frame.
pub const MAGIC: u8 = 0x0F;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 14;
/// Upstream's `RESPONSE_MAX_BUFFER_SIZE` default: the largest payload accepted (30 MiB).
pub const MAX_PAYLOAD: usize = 31_457_280;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("magic number mismatch: {0}")]
    Magic(u8),
    #[error("header length mismatch: {0}")]
    HeaderLength(u16),
    #[error("frame payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("stream ended inside a frame ({0} bytes pending)")]
    Truncated(usize),
}

/// Incremental decoder: feed bytes with [`Decoder::push`], take whole payloads with
/// [`Decoder::next_payload`], and call [`Decoder::finish`] at end of input.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole payload, `Ok(None)` when more bytes are needed.
    pub fn next_payload(&mut self) -> Result<Option<bytes::Bytes>, FrameError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.buf[0] != MAGIC {
            return Err(FrameError::Magic(self.buf[0]));
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header_len = u16::from_le_bytes([self.buf[2], self.buf[3]]);
        if header_len != 10 {
            return Err(FrameError::HeaderLength(header_len));
        }
        let len = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// End of input: fine at a frame boundary, an error inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![MAGIC, 0, 10, 0];
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_frames_split_anywhere() {
        let mut bytes = frame(br#"{"data":{},"error":""}"#);
        bytes.extend(frame(b"{}"));
        for cut in 0..bytes.len() {
            let mut d = Decoder::default();
            let mut out = Vec::new();
            d.push(&bytes[..cut]);
            while let Some(p) = d.next_payload().expect("valid") {
                out.push(p);
            }
            d.push(&bytes[cut..]);
            while let Some(p) = d.next_payload().expect("valid") {
                out.push(p);
            }
            d.finish().expect("ends at a boundary");
            assert_eq!(out.len(), 2, "cut at {cut}");
            assert_eq!(&out[1][..], b"{}");
        }
    }

    #[test]
    fn rejects_bad_magic_header_and_truncation() {
        let mut d = Decoder::default();
        d.push(b"{\"data\":1}");
        assert_eq!(d.next_payload(), Err(FrameError::Magic(b'{')));
        let mut d = Decoder::default();
        let mut f = frame(b"{}");
        f[2] = 9;
        d.push(&f);
        assert_eq!(d.next_payload(), Err(FrameError::HeaderLength(9)));
        let mut d = Decoder::default();
        d.push(&frame(b"{}")[..15]);
        assert_eq!(d.next_payload(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated(15)));
    }
}
