//! Slowing down password guessing, per server process.
//!
//! * Failed authentications are counted per client address and per user name. After
//!   `auth_backoff_after` failures an address is refused (429 with `Retry-After`) without any
//!   password being checked, for a back-off that doubles with every further failure up to
//!   `auth_backoff_max_secs`; a success clears it. Only the address that failed is refused, so a
//!   stranger cannot lock a user out.
//! * Per user name, failures past the threshold only *delay* the 401 by the same back-off: a
//!   correct password still gets in at once, while guessing one user's password from many
//!   addresses gets slow.
//! * Password hashes (argon2, deliberately slow) are checked on the blocking pool with at most
//!   [`HASHING_AT_ONCE`] at a time, so that guesses cannot take the async workers (and every
//!   other request) with them; an unknown user costs the same check against a dummy hash.
//!
//! The client address is the socket's peer, or the first address of `X-Forwarded-For` that is
//! not a trusted proxy when the peer is one (`trusted_proxies`). Counters live in this process
//! only (bounded, forgotten after the back-off): several nodes each count on their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Argon2 checks running at once (each takes a core for tens of milliseconds).
pub const HASHING_AT_ONCE: usize = 2;

/// Entries kept at most; older ones are forgotten first when full.
const MAX_ENTRIES: usize = 100_000;

tokio::task_local! {
    /// The client address of the request being served (set by the router's middleware).
    pub static CLIENT: Option<IpAddr>;
}

/// The current request's client address, if the server knows it.
pub fn client() -> Option<IpAddr> {
    CLIENT.try_with(|c| *c).ok().flatten()
}

/// The client address of a request from `peer`: `X-Forwarded-For` is believed only as far as it
/// was written by trusted proxies (read from the right, the first untrusted hop is the client).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|h| !trusted.contains(h))
        .unwrap_or(peer)
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    /// Refused (addresses) until then.
    until: Instant,
}

pub struct Throttle {
    after: u32,
    max: Duration,
    failures: Mutex<HashMap<String, Failures>>,
    pub hashing: tokio::sync::Semaphore,
}

impl Throttle {
    pub fn new(after: u32, max: Duration) -> Throttle {
        Throttle {
            after,
            max,
            failures: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        }
    }

    /// The back-off still to wait for `key`, if it is in one.
    fn remaining(&self, key: &str) -> Option<Duration> {
        let map = self.failures.lock().ok()?;
        let f = map.get(key)?;
        f.until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// 1 s at the threshold, doubling with every further failure, at most `max`.
    fn backoff(&self, count: u32) -> Option<Duration> {
        let over = count.checked_sub(self.after)?;
        Some(
            Duration::from_secs(1u64 << over.min(30))
                .min(self.max)
                .max(Duration::from_secs(1)),
        )
    }

    /// How long an address must still wait before its credentials are looked at again.
    pub fn address_blocked(&self, addr: Option<IpAddr>) -> Option<Duration> {
        self.remaining(&format!("addr:{}", addr?))
    }

    /// Counts a failure; returns how long to hold the 401 for the user's sake. The address's
    /// refusal starts once that hold is over, so the hold does not use it up.
    pub fn failed(&self, addr: Option<IpAddr>, user: Option<&str>) -> Option<Duration> {
        let Ok(mut map) = self.failures.lock() else {
            return None;
        };
        if map.len() >= MAX_ENTRIES {
            let max = self.max;
            let now = Instant::now();
            map.retain(|_, f| f.until + max > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let now = Instant::now();
        let hold = user.and_then(|u| {
            let f = map.entry(format!("user:{u}")).or_insert(Failures {
                count: 0,
                until: now,
            });
            f.count = f.count.saturating_add(1);
            let hold = self.backoff(f.count);
            f.until = now + hold.unwrap_or_default();
            hold
        });
        if let Some(a) = addr {
            let f = map.entry(format!("addr:{a}")).or_insert(Failures {
                count: 0,
                until: now,
            });
            f.count = f.count.saturating_add(1);
            if let Some(b) = self.backoff(f.count) {
                f.until = now + hold.unwrap_or_default() + b;
            }
        }
        hold
    }

    /// A success clears the address's and the user's counts.
    pub fn succeeded(&self, addr: Option<IpAddr>, user: &str) {
        if let Ok(mut map) = self.failures.lock() {
            if let Some(a) = addr {
                map.remove(&format!("addr:{a}"));
            }
            map.remove(&format!("user:{user}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_back_off_exponentially_and_successes_clear_them() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            assert_eq!(t.failed(Some(a), Some("alice")), None);
        }
        assert!(t.address_blocked(Some(a)).is_none(), "below the threshold");
        // At the threshold: the 401 is held a second, and the address is refused for a second
        // after that.
        assert_eq!(
            t.failed(Some(a), Some("alice")),
            Some(Duration::from_secs(1))
        );
        assert!(t.address_blocked(Some(a)).unwrap() > Duration::from_secs(1));
        assert!(
            t.address_blocked(Some(b)).is_none(),
            "other addresses are not refused"
        );
        // Another user's name from the same address: no hold, a doubled refusal.
        assert_eq!(t.failed(Some(a), Some("bob")), None);
        assert!(t.address_blocked(Some(a)).unwrap() > Duration::from_secs(1));
        t.succeeded(Some(a), "alice");
        assert!(t.address_blocked(Some(a)).is_none());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let trusted = [proxy, "10.0.0.2".parse().unwrap()];
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            client_address(stranger, &h, &trusted),
            stranger,
            "spoofed header ignored"
        );
    }
}
