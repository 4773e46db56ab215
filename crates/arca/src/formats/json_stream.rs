//! Splits a large base64 string out of a JSON document while it streams in, so that neither the
//! encoded nor the decoded file is ever held in memory: npm publish sends its tarball as
//! `_attachments.<file>.data`, base64 inside the JSON packument.
//!
//! [`Splitter`] is a small lexer, not a parser: it follows objects, arrays, keys and strings just
//! far enough to know the key path of each string value. The document minus the split-out string
//! (which becomes `""`) is kept, capped, for `serde_json` to parse afterwards; the string is
//! decoded from base64 as it arrives and handed out in pieces.

use base64::Engine;
use bytes::Bytes;

/// What one chunk of input produced, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// The split-out string begins.
    Start,
    /// Decoded bytes of the split-out string.
    Data(Bytes),
    /// The split-out string ended.
    End,
}

/// Why the input was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The document without the split-out string is larger than the limit.
    TooLarge(usize),
    /// The split-out string is not plain base64 (or the document ended inside it).
    Malformed(String),
}

enum Frame {
    /// An object and the last key read in it.
    Object {
        key: Vec<u8>,
        expect_key: bool,
    },
    Array,
}

enum Lex {
    Normal,
    Str { is_key: bool, escape: bool },
    Split { escape: bool, padded: bool },
}

/// Longest key remembered: longer keys never match a path.
const MAX_KEY: usize = 1024;
/// Base64 characters decoded at once (a multiple of 4).
const DECODE_BATCH: usize = 64 << 10;

pub struct Splitter {
    doc: Vec<u8>,
    limit: usize,
    stack: Vec<Frame>,
    lex: Lex,
    key: Vec<u8>,
    b64: Vec<u8>,
    /// Key paths of the strings to split out; `*` matches any key.
    path: &'static [&'static str],
}

impl Splitter {
    /// Splits out string values at `path` (object keys from the top; `*` matches any key),
    /// keeping at most `limit` bytes of the rest of the document.
    pub fn new(path: &'static [&'static str], limit: usize) -> Splitter {
        Splitter {
            doc: Vec::new(),
            limit,
            stack: Vec::new(),
            lex: Lex::Normal,
            key: Vec::new(),
            b64: Vec::new(),
            path,
        }
    }

    fn at_path(&self) -> bool {
        self.stack.len() == self.path.len()
            && self.stack.iter().zip(self.path).all(|(f, want)| match f {
                Frame::Object { key, .. } => *want == "*" || key == want.as_bytes(),
                Frame::Array => false,
            })
    }

    fn keep(&mut self, b: u8) -> Result<(), SplitError> {
        if self.doc.len() >= self.limit {
            return Err(SplitError::TooLarge(self.limit));
        }
        self.doc.push(b);
        Ok(())
    }

    /// Decodes the buffered base64 characters, all of them (`last`) or whole batches only.
    fn decode(&mut self, last: bool, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        let n = if last {
            self.b64.len()
        } else {
            self.b64.len() / DECODE_BATCH * DECODE_BATCH
        };
        if n == 0 {
            return Ok(());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&self.b64[..n])
            .map_err(|e| SplitError::Malformed(format!("attachment data is not base64: {e}")))?;
        self.b64.drain(..n);
        if !decoded.is_empty() {
            out.push(Piece::Data(Bytes::from(decoded)));
        }
        Ok(())
    }

    /// Feeds the next chunk of the document.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Piece>, SplitError> {
        let mut out = Vec::new();
        for &b in chunk {
            match &mut self.lex {
                Lex::Split { escape, padded } => {
                    let c = if *escape {
                        *escape = false;
                        match b {
                            // `\/` is how some encoders write '/'; `\n`, `\r` are line breaks.
                            b'/' => b'/',
                            b'n' | b'r' => continue,
                            _ => {
                                return Err(SplitError::Malformed(
                                    "attachment data is not plain base64".into(),
                                ));
                            }
                        }
                    } else {
                        match b {
                            b'\\' => {
                                *escape = true;
                                continue;
                            }
                            b'"' => {
                                self.decode(true, &mut out)?;
                                out.push(Piece::End);
                                self.lex = Lex::Normal;
                                self.keep(b'"')?;
                                continue;
                            }
                            _ => b,
                        }
                    };
                    // Padding ends the data: a decoder would refuse anything after it, and
                    // batches decoded separately would not notice.
                    if c == b'=' {
                        *padded = true;
                    } else if *padded {
                        return Err(SplitError::Malformed(
                            "attachment data continues after its padding".into(),
                        ));
                    }
                    self.b64.push(c);
                    if self.b64.len() >= DECODE_BATCH {
                        self.decode(false, &mut out)?;
                    }
                }
                Lex::Str { is_key, escape } => {
                    let is_key = *is_key;
                    if *escape {
                        *escape = false;
                    } else if b == b'\\' {
                        *escape = true;
                    } else if b == b'"' {
                        self.lex = Lex::Normal;
                        if is_key && let Some(Frame::Object { key, .. }) = self.stack.last_mut() {
                            *key = std::mem::take(&mut self.key);
                        }
                        self.keep(b)?;
                        continue;
                    }
                    if is_key && self.key.len() < MAX_KEY {
                        self.key.push(b);
                    } else if is_key {
                        // Too long to match any path: make sure it cannot.
                        self.key.push(0);
                    }
                    self.keep(b)?;
                }
                Lex::Normal => {
                    match b {
                        b'{' => self.stack.push(Frame::Object {
                            key: Vec::new(),
                            expect_key: true,
                        }),
                        b'[' => self.stack.push(Frame::Array),
                        b'}' | b']' => {
                            self.stack.pop();
                        }
                        b':' => {
                            if let Some(Frame::Object { expect_key, .. }) = self.stack.last_mut() {
                                *expect_key = false;
                            }
                        }
                        b',' => {
                            if let Some(Frame::Object { expect_key, .. }) = self.stack.last_mut() {
                                *expect_key = true;
                            }
                        }
                        b'"' => {
                            let is_key = matches!(
                                self.stack.last(),
                                Some(Frame::Object {
                                    expect_key: true,
                                    ..
                                })
                            );
                            if !is_key && self.at_path() {
                                self.lex = Lex::Split {
                                    escape: false,
                                    padded: false,
                                };
                                out.push(Piece::Start);
                            } else {
                                self.key.clear();
                                self.lex = Lex::Str {
                                    is_key,
                                    escape: false,
                                };
                            }
                        }
                        _ => {}
                    }
                    self.keep(b)?;
                }
            }
        }
        Ok(out)
    }

    /// The document without the split-out strings, once the input is complete.
    pub fn finish(self) -> Result<Vec<u8>, SplitError> {
        if matches!(self.lex, Lex::Split { .. }) {
            return Err(SplitError::Malformed(
                "the document ends inside the attachment data".into(),
            ));
        }
        Ok(self.doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &[&str] = &["_attachments", "*", "data"];

    /// Feeds `doc` in chunks of `size` and returns the kept document and the decoded data.
    fn split(doc: &str, size: usize, limit: usize) -> Result<(String, Vec<u8>, usize), SplitError> {
        let mut s = Splitter::new(PATH, limit);
        let (mut data, mut starts) = (Vec::new(), 0);
        for chunk in doc.as_bytes().chunks(size) {
            for p in s.feed(chunk)? {
                match p {
                    Piece::Start => starts += 1,
                    Piece::Data(d) => data.extend_from_slice(&d),
                    Piece::End => {}
                }
            }
        }
        Ok((String::from_utf8(s.finish()?).unwrap(), data, starts))
    }

    #[test]
    fn splits_attachment_data_at_any_chunking() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let doc = format!(
            r#"{{"name":"a","data":"not this","versions":{{"1.0.0":{{"data":"nor this"}}}},"_attachments":{{"a-1.0.0.tgz":{{"content_type":"x","data":"{b64}","length":{}}}}},"x":["data"]}}"#,
            payload.len()
        );
        for size in [1, 3, 4096, 1 << 20] {
            let (kept, data, starts) = split(&doc, size, 4096).unwrap();
            assert_eq!(data, payload, "chunk size {size}");
            assert_eq!(starts, 1);
            let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
            assert_eq!(v["_attachments"]["a-1.0.0.tgz"]["data"], "");
            assert_eq!(v["_attachments"]["a-1.0.0.tgz"]["length"], payload.len());
            assert_eq!(v["data"], "not this");
            assert_eq!(v["versions"]["1.0.0"]["data"], "nor this");
        }
    }

    #[test]
    fn escaped_quotes_and_keys_do_not_confuse_it() {
        let doc =
            r#"{"k\"_attachments":{"x":{"data":"aGk="}},"_attachments":{"f":{"data":"aGk\/"}}}"#;
        let (kept, data, starts) = split(doc, 2, 1024).unwrap();
        assert_eq!(starts, 1);
        assert_eq!(data, b"hi?");
        assert!(kept.contains(r#""data":"aGk=""#), "{kept}");
    }

    #[test]
    fn refuses_oversized_documents_and_bad_data() {
        let doc = format!(r#"{{"readme":"{}"}}"#, "x".repeat(100));
        assert_eq!(split(&doc, 7, 50), Err(SplitError::TooLarge(50)));
        // The attachment does not count against the document's limit.
        let big = base64::engine::general_purpose::STANDARD.encode(vec![1u8; 300]);
        let doc = format!(r#"{{"_attachments":{{"f":{{"data":"{big}"}}}}}}"#);
        assert!(split(&doc, 64, 50).is_ok());
        for bad in [
            r#"{"_attachments":{"f":{"data":"a*b="}}}"#,
            r#"{"_attachments":{"f":{"data":"aGk=aGk="}}}"#,
            r#"{"_attachments":{"f":{"data":"aGk\u0041"}}}"#,
            r#"{"_attachments":{"f":{"data":"aGk="#,
        ] {
            assert!(
                matches!(split(bad, 3, 1024), Err(SplitError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
