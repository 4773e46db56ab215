//! End-to-end tests over real HTTP against `arca serve` processes; every test runs on SQLite and on
//! PostgreSQL (see `both_backends!`).

mod common;

mod access;
mod auth;
mod balancer;
mod cargo;
mod cluster;
mod composer;
mod cran;
mod crash;
mod debian;
mod generic;
mod gitflic;
mod gitflic_names;
mod gitflic_seed;
mod groups;
mod groups2;
mod harness;
mod harness_seed;
mod helm;
mod maven;
mod names;
mod npm;
mod nuget;
mod oci;
mod oci_conformance;
mod opm;
mod ops;
mod proxy;
mod proxy2;
mod proxy_cluster;
mod proxy_metadata;
mod proxy_oci;
mod proxy_stream;
mod pypi;
mod readme;
mod real_world;
mod rpm;
mod security;
mod setup_clients;
mod setup_verbatim;
mod stub;
mod tokens;
mod trash;
mod uploads;
