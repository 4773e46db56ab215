//! Presigned GET URLs (AWS Signature Version 4, query-string authentication) with response-header
//! overrides, so that a redirected download keeps the headers Arca sets on user content.
//! `object_store` presigns only bare URLs, hence this small signer.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// SigV4's encoding: everything but the unreserved characters.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// What a presigned GET needs.
pub struct Presign<'a> {
    /// `scheme://host[:port]` of the S3 API.
    pub origin: &'a str,
    /// The object's path on that host, unencoded (`/bucket/key` path-style, `/key` otherwise).
    pub path: &'a str,
    pub region: &'a str,
    pub key_id: &'a str,
    pub secret: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    pub expires_secs: u64,
    /// Extra query parameters, signed with the rest (`response-content-type`, ...).
    pub extra: &'a [(&'a str, &'a str)],
}

impl Presign<'_> {
    pub fn url(&self) -> String {
        let date = &self.amz_date[..8.min(self.amz_date.len())];
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let credential = format!("{}/{scope}", self.key_id);
        let expires = self.expires_secs.to_string();
        let mut query: Vec<(&str, &str)> = vec![
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", &credential),
            ("X-Amz-Date", self.amz_date),
            ("X-Amz-Expires", &expires),
            ("X-Amz-SignedHeaders", "host"),
        ];
        query.extend_from_slice(self.extra);
        query.sort();
        let canonical_query = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, STRICT),
                    utf8_percent_encode(v, STRICT)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let canonical_path = self
            .path
            .split('/')
            .map(|s| utf8_percent_encode(s, STRICT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        let host = self
            .origin
            .split_once("://")
            .map_or(self.origin, |(_, h)| h);
        let canonical_request = format!(
            "GET\n{canonical_path}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            self.amz_date,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{}", self.secret).as_bytes(), date);
        for part in [self.region, "s3", "aws4_request"] {
            key = hmac(&key, part);
        }
        let signature = hex::encode(hmac(&key, &to_sign));
        format!(
            "{}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}",
            self.origin
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the S3 documentation ("Authenticating Requests: Using Query Parameters").
    #[test]
    fn matches_the_documented_example() {
        let url = Presign {
            origin: "https://examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            region: "us-east-1",
            key_id: "AKIAIOSFODNN7EXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            amz_date: "20130524T000000Z",
            expires_secs: 86400,
            extra: &[],
        }
        .url();
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"));
    }
}
