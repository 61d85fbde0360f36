//! One invocation through a function's pool, with its structured log record and metrics.
//! The gateway, the consumers, the scheduler and `nimbus invoke` all come through here.

use std::time::Instant;

use nimbus_local_workers::{Event, Invocation, InvokeError};
use serde::Serialize;

use crate::runtime::{Live, Runtime};

/// The log record of one invocation (`"kind": "invocation"`; the log adds `ts`).
#[derive(Serialize)]
struct Record<'a> {
    kind: &'static str,
    function: &'a str,
    request_id: &'a str,
    trigger: &'a str,
    duration_ms: f64,
    memory_mb: Option<u32>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The stack trace of a handler that raised or failed to load.
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
}

/// Invokes `function` of `live` with `event`; `trigger` names what fired it in the log.
pub async fn invoke(
    rt: &Runtime,
    live: &Live,
    function: &str,
    trigger: &str,
    request_id: &str,
    event: impl Into<Event>,
) -> Result<Invocation, InvokeError> {
    let started = Instant::now();
    let Some(pool) = live.pools.get(function) else {
        return Err(InvokeError::Draining);
    };
    let event = event.into();
    let recorded = event.clone();
    let mut result = pool.invoke(request_id, event.clone()).await;
    if matches!(result, Err(InvokeError::Draining)) {
        // Redeployed between routing and invoking: the new generation serves it instead.
        if let Some(current) = rt.live()
            && let Some(newer) = current.pools.get(function)
            && !std::sync::Arc::ptr_eq(newer, pool)
        {
            result = newer.invoke(request_id, event).await;
        }
    }
    // What reaches the caller, the HTTP client and the log never holds a secret value.
    let result = result.map_err(|e| rt.secrets.mask_error(e));
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut record = Record {
        kind: "invocation",
        function,
        request_id,
        trigger,
        duration_ms: (elapsed_ms * 100.0).round() / 100.0,
        memory_mb: live.deployment.functions.get(function).map(|f| f.memory_mb),
        status: "ok",
        cold: None,
        init_ms: None,
        error: None,
        stack: None,
    };
    let metrics = rt.metrics.function(function);
    match &result {
        Ok(inv) => {
            record.cold = Some(inv.cold);
            record.init_ms = inv.init.map(|init| init.as_millis() as u64);
            metrics.invocation(elapsed_ms, true, inv.cold);
        }
        Err(e) => {
            record.status = status_of(e);
            record.error = Some(e.to_string());
            if let InvokeError::Handler { error } | InvokeError::LoadFailed { error } = e {
                record.stack = error.stack.clone();
            }
            metrics.invocation(elapsed_ms, false, false);
        }
    }
    rt.logs.write_record(&record);
    rt.console.record(
        function,
        trigger,
        request_id,
        recorded,
        &result,
        record.status,
        record.duration_ms,
    );
    result
}

/// The log status word of an error.
pub fn status_of(e: &InvokeError) -> &'static str {
    match e {
        InvokeError::Timeout { .. } => "timeout",
        InvokeError::OutOfMemory { .. } => "out_of_memory",
        InvokeError::Crashed { .. } => "crashed",
        InvokeError::LoadFailed { .. } => "load_failed",
        InvokeError::Handler { .. } => "error",
        InvokeError::Overloaded => "throttled",
        InvokeError::Draining => "unavailable",
    }
}

/// A fresh request id: 24 hex digits, unique within the runtime process. One random seed per
/// process, then a counter mixed through splitmix64 — no system call per request.
pub fn request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        u64::from_str_radix(&crate::state::random_token(8), 16).unwrap_or(0x9e37_79b9_7f4a_7c15)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{z:016x}{:08x}", n as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let ids: std::collections::BTreeSet<String> =
            (0..10_000).map(|_| super::request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|i| i.len() == 24 && i.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
