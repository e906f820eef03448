#![allow(dead_code)]
pub mod app;
pub mod cluster;
pub mod db;
pub mod library;
pub mod process;
pub mod provider;
pub mod redis;
pub mod tls;
