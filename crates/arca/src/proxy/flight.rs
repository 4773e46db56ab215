//! Single flight: concurrent requests for one key share one piece of work (one upstream fetch).
//!
//! The first caller for a key starts the work; callers arriving while it runs wait for the same
//! result instead of starting their own. The key lock is per process; across processes, proxied
//! files take a lease in the metadata store (`files::fetch`).

use std::collections::HashMap;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// In-flight work by key; `T` is cloned to every waiter.
pub struct Flights<T: Clone> {
    running: Mutex<HashMap<String, Shared<BoxFuture<'static, T>>>>,
}

impl<T: Clone> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Runs `work` for `key`, or joins the run already in flight for it. The work runs on its own
    /// task, so a leader whose client goes away does not cancel it for the followers.
    pub async fn run(&self, key: &str, work: BoxFuture<'static, T>) -> T {
        let shared = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = running.get(key) {
                f.clone()
            } else {
                let task = tokio::spawn(work);
                let f = async move {
                    match task.await {
                        Ok(v) => v,
                        // The work panicked: its waiters see the panic too (as an error of
                        // theirs would be seen), which the server's panic layer turns into a 500.
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    }
                }
                .boxed()
                .shared();
                running.insert(key.to_string(), f.clone());
                f
            }
        };
        let out = shared.clone().await;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        // Only the entry of this run: a later run for the key may have replaced it already.
        if running.get(key).is_some_and(|f| f.ptr_eq(&shared)) {
            running.remove(key);
        }
        out
    }

    /// Keys in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights: Arc<Flights<usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..50).map(|_| {
            let flights = flights.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                let work = async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                }
                .boxed();
                flights.run("k", work).await
            })
        });
        let results = futures::future::join_all(calls).await;
        assert!(
            results.iter().all(|r| *r.as_ref().unwrap() == 1),
            "{results:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0, "finished runs are forgotten");
        // A later call runs again.
        let runs2 = runs.clone();
        let v = flights
            .run(
                "k",
                async move { runs2.fetch_add(1, Ordering::SeqCst) + 1 }.boxed(),
            )
            .await;
        assert_eq!(v, 2);
    }
}
