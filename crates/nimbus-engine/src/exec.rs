//! Running a graph of operations with bounded concurrency: each node starts once the nodes it
//! waits for have succeeded, at most `limit` run at a time, and after the first failure nothing
//! new starts while what is running finishes.
//!
//! Everything runs inside the caller's future (no spawned tasks): dropping the future stops all
//! work at once, as a killed process would, and nothing keeps writing state behind the caller's
//! back.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// A boxed operation.
pub(crate) type Task<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs node `i` via `start(i)` after every node in `deps[i]`; `keys` orders the ready nodes.
/// Returns each node's result, `None` for nodes that never started.
pub(crate) async fn run<'a, T: Send + 'a, E: Send + 'a>(
    keys: &[String],
    deps: &[Vec<usize>],
    limit: usize,
    mut start: impl FnMut(usize) -> Task<'a, Result<T, E>> + Send,
) -> Vec<Option<Result<T, E>>> {
    let n = keys.len();
    let mut dependents = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for (i, ds) in deps.iter().enumerate() {
        let unique: BTreeSet<usize> = ds.iter().copied().collect();
        waiting[i] = unique.len();
        for d in unique {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| (keys[i].as_str(), i))
        .collect();
    let mut results: Vec<Option<Result<T, E>>> = (0..n).map(|_| None).collect();
    let mut running: Vec<Task<'a, (usize, Result<T, E>)>> = Vec::new();
    let mut stopped = false;
    loop {
        while !stopped && running.len() < limit.max(1) {
            let Some((_, i)) = ready.pop_first() else {
                break;
            };
            let task = start(i);
            running.push(Box::pin(async move { (i, task.await) }));
        }
        if running.is_empty() {
            return results;
        }
        let (i, result) = next(&mut running).await;
        match &result {
            Ok(_) => {
                for &d in &dependents[i] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 {
                        ready.insert((keys[d].as_str(), d));
                    }
                }
            }
            Err(_) => stopped = true,
        }
        results[i] = Some(result);
    }
}

/// The output of whichever running task finishes first.
async fn next<T>(running: &mut Vec<Task<'_, T>>) -> T {
    std::future::poll_fn(|cx| {
        let mut done = None;
        for (i, task) in running.iter_mut().enumerate() {
            if let Poll::Ready(out) = task.as_mut().poll(cx) {
                done = Some((i, out));
                break;
            }
        }
        match done {
            Some((i, out)) => {
                drop(running.swap_remove(i));
                Poll::Ready(out)
            }
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn dependencies_limit_and_stop_on_failure() {
        let keys: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // d waits for a and b; e waits for d.
        let deps = vec![vec![], vec![], vec![], vec![0, 1], vec![3]];
        let order = Mutex::new(Vec::new());
        let now = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let results = run(&keys, &deps, 2, |i| {
            let (order, now, max) = (&order, &now, &max);
            Box::pin(async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                order.lock().unwrap().push(i);
                if i == 3 { Err("d failed") } else { Ok(i) }
            })
        })
        .await;
        assert_eq!(max.load(Ordering::SeqCst), 2);
        let order = order.into_inner().unwrap();
        assert_eq!(&order[..2], &[0, 1]);
        assert!(order.iter().position(|&i| i == 3) > order.iter().position(|&i| i == 1));
        assert_eq!(results[3], Some(Err("d failed")));
        assert_eq!(results[4], None, "dependents of a failure never start");
    }
}
