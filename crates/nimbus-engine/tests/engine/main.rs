//! The engine's behaviour through its public API, against `FakeCloud`.

mod support;

mod apply;
mod crash;
mod destroy;
mod lock;
mod plan;
mod props;
mod refresh;
mod state;
