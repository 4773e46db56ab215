//! Arca: a multi-format artifact registry.

pub mod api;
pub mod archive;
pub mod auth;
pub mod blob;
pub mod config;
pub mod dcf;
pub mod doc_cache;
pub mod download;
pub mod download_counter;
pub mod error;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod gc;
pub mod http;
pub mod listener;
pub mod model;
pub mod proxy;
pub mod server;
pub mod service;
pub mod signing;
pub mod state;
pub mod store;
#[cfg(test)]
mod testing;
pub mod throttle;
pub mod versions;
