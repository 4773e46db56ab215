//! The two management dialects (Harness and GitFlic), Arca's own API (`/arca/v1`: tokens), their
//! shared helpers, and the OpenAPI document.

pub mod client_setup;
pub mod common;
pub mod gitflic;
pub mod harness;
pub mod merged;
pub mod openapi;
pub mod secrets;
pub mod tokens;
