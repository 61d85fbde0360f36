//! [`Engine`]: one deployment's backend and driver, with the operations the CLI runs — plan,
//! apply, destroy, and the lock commands.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::apply::ApplyGraph;
use crate::backend::Backend;
use crate::driver::Driver;
use crate::graph::Graph;
use crate::lock::{LockInfo, LockOptions, acquire};
use crate::ops::Ctx;
use crate::plan::{Action, Plan, Summary};
use crate::progress::{Event, ProgressFn};
use crate::report::{Failure, Report, Retained};
use crate::retry::RetryPolicy;
use crate::{Deployment, Error, NativeResource, State, apply, destroy, plan};

/// How the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Most driver operations in flight at once (at least 1).
    pub parallelism: usize,
    /// Retries of retryable driver errors.
    pub retry: RetryPolicy,
    /// Lock timeout and expiry.
    pub lock: LockOptions,
    /// Whether apply reads every recorded resource from the cloud first, so that changes made
    /// outside nimbus are corrected.
    pub refresh: bool,
    /// Whether apply may delete or replace a `retain_data` resource that still holds data.
    /// Without it, such an apply is refused before anything changes
    /// ([`Error::WouldLoseData`]).
    pub allow_data_loss: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 8,
            retry: RetryPolicy::default(),
            lock: LockOptions::default(),
            refresh: false,
            allow_data_loss: false,
        }
    }
}

/// The deploy engine for one deployment.
///
/// The futures it returns are `Send` and do all their work inside themselves: dropping one (a
/// timeout, Ctrl-C) stops everything at once, like a killed process. The lock then stays until
/// it expires or `unlock` is called with its id, and the next apply reconciles the journal.
pub struct Engine<B, D> {
    deployment: Deployment,
    backend: B,
    driver: D,
    options: Options,
    progress: Option<ProgressFn>,
}

impl<B: Backend, D: Driver> Engine<B, D> {
    /// An engine with default [`Options`].
    pub fn new(deployment: Deployment, backend: B, driver: D) -> Self {
        Engine {
            deployment,
            backend,
            driver,
            options: Options::default(),
            progress: None,
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Calls `progress` for every [`Event`] of apply and destroy.
    pub fn on_progress(mut self, progress: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The recorded state, if anything was deployed.
    pub async fn state(&self) -> Result<Option<State>, Error> {
        let state = self.backend.load().await?;
        if let Some(s) = &state {
            s.check_deployment(&self.deployment, &self.backend.location())?;
        }
        Ok(state)
    }

    /// What [`apply`](Self::apply) would do with `desired`. With `refresh`, every recorded
    /// resource is read from the cloud first and differences are reported as drift. Read-only:
    /// takes no lock and writes nothing.
    pub async fn plan(&self, desired: &[NativeResource], refresh: bool) -> Result<Plan, Error> {
        let graph = Graph::new(desired)?;
        let state = self
            .state()
            .await?
            .unwrap_or_else(|| State::new(&self.deployment));
        let ctx = Ctx::new(&self.backend, &self.driver, state, self.options.retry, None);
        let drift = match refresh {
            true => ctx.refresh(self.options.parallelism, false).await?,
            false => BTreeMap::new(),
        };
        let state = ctx.state.into_inner();
        Ok(plan::compute(
            &self.deployment,
            &graph,
            &state,
            &drift,
            refresh,
        ))
    }

    /// Makes the cloud match `desired`, under the lock: reconciles what an interrupted run left
    /// in the journal, refreshes if asked, then creates, updates, replaces and deletes in
    /// dependency order, journaling each operation. On a failure nothing new starts, running
    /// operations finish, and [`Error::Failed`] names each failed resource with the cloud's
    /// message. A `retain_data` resource that the plan would delete or replace and that still
    /// holds data (as the driver's `holds_data` says) stops the apply before anything changes
    /// ([`Error::WouldLoseData`]), unless [`Options::allow_data_loss`].
    pub async fn apply(&self, desired: &[NativeResource]) -> Result<Report, Error> {
        let started = Instant::now();
        let graph = Graph::new(desired)?;
        let lock = self.lock("apply").await?;
        let result = async {
            let state = self
                .state()
                .await?
                .unwrap_or_else(|| State::new(&self.deployment));
            let ctx = self.ctx(state);
            ctx.recover().await?;
            let mut forgotten = 0;
            if self.options.refresh {
                let drift = ctx.refresh(self.options.parallelism, true).await?;
                forgotten = drift
                    .iter()
                    .filter(|(id, d)| d.missing && graph.index_of(id).is_none())
                    .count();
            }
            if !self.options.allow_data_loss {
                self.guard_data(&ctx, &graph).await?;
            }
            let recorded = ctx.state.lock().await.resources.clone();
            let nodes = ApplyGraph::new(&graph, &recorded);
            let (mut summary, failures) =
                apply::execute(&ctx, &nodes, self.options.parallelism).await?;
            summary.delete += forgotten;
            self.finish("apply", &ctx, summary, failures, Vec::new(), started)
                .await
        }
        .await;
        self.release(&lock, result).await
    }

    /// Refuses an apply that would delete or replace a recorded `retain_data` resource that
    /// still holds data.
    async fn guard_data(&self, ctx: &Ctx<'_, B, D>, graph: &Graph<'_>) -> Result<(), Error> {
        let state = ctx.state.lock().await.clone();
        let plan = plan::compute(&self.deployment, graph, &state, &BTreeMap::new(), false);
        let mut at_risk = Vec::new();
        for row in &plan.resources {
            if !matches!(row.action, Action::Delete | Action::Replace) {
                continue;
            }
            let Some(entry) = state.get(&row.id).filter(|e| e.retain_data) else {
                continue;
            };
            if ctx.holds_data(entry).await? {
                at_risk.push(format!("{} ({})", row.id, row.action));
            }
        }
        match at_risk.is_empty() {
            true => Ok(()),
            false => Err(Error::WouldLoseData {
                scope: self.deployment.to_string(),
                resources: at_risk,
            }),
        }
    }

    /// [`apply`](Self::apply), unless a read-only plan finds nothing to do and no run holds the
    /// lock: then it returns at once, without taking the lock or writing anything, so an
    /// unchanged redeploy makes no write call at all. With [`Options::refresh`], the plan reads
    /// the cloud first, so drift still leads to an apply.
    pub async fn apply_if_changed(&self, desired: &[NativeResource]) -> Result<Report, Error> {
        let started = Instant::now();
        let plan = self.plan(desired, self.options.refresh).await?;
        if plan.has_changes() || self.lock_info().await?.is_some() {
            return self.apply(desired).await;
        }
        let state = self.state().await?;
        Ok(Report {
            summary: plan.summary,
            outputs: state.as_ref().map(State::outputs).unwrap_or_default(),
            serial: state.map_or(0, |s| s.serial),
            elapsed: started.elapsed(),
            ..Report::default()
        })
    }

    /// Deletes every recorded resource, dependents first, under the lock. Resources with
    /// `retain_data` that still hold data (as the driver's `holds_data` says) are kept with
    /// what they depend on, and reported, unless `force`.
    pub async fn destroy(&self, force: bool) -> Result<Report, Error> {
        let started = Instant::now();
        let lock = self.lock("destroy").await?;
        let result = async {
            let Some(state) = self.state().await? else {
                return Ok(Report {
                    elapsed: started.elapsed(),
                    ..Report::default()
                });
            };
            let ctx = self.ctx(state);
            ctx.recover().await?;
            let (summary, failures, retained) =
                destroy::execute(&ctx, force, self.options.parallelism).await?;
            self.finish("destroy", &ctx, summary, failures, retained, started)
                .await
        }
        .await;
        self.release(&lock, result).await
    }

    /// The current lock, if any.
    pub async fn lock_info(&self) -> Result<Option<LockInfo>, Error> {
        self.backend.read_lock().await
    }

    /// Removes the lock when its id is `id` (`nimbus unlock <id>`), for a run that died.
    pub async fn unlock(&self, id: &str) -> Result<(), Error> {
        self.backend.unlock(id).await
    }

    async fn lock(&self, operation: &str) -> Result<LockInfo, Error> {
        acquire(
            &self.backend,
            &self.deployment.lock_scope(),
            operation,
            &self.options.lock,
        )
        .await
    }

    async fn release(
        &self,
        lock: &LockInfo,
        result: Result<Report, Error>,
    ) -> Result<Report, Error> {
        let unlocked = self.backend.unlock(&lock.id).await;
        let Err(e) = unlocked else {
            return result;
        };
        let warning = format!(
            "could not release the lock ({}): once the cause is fixed, run `nimbus unlock {}`",
            crate::error::chain(&e),
            lock.id
        );
        match result {
            Ok(mut report) => {
                report.warnings.push(warning);
                Ok(report)
            }
            Err(Error::Failed {
                operation,
                scope,
                failures,
                mut report,
            }) => {
                report.warnings.push(warning);
                Err(Error::Failed {
                    operation,
                    scope,
                    failures,
                    report,
                })
            }
            Err(other) => Err(other),
        }
    }

    fn ctx(&self, state: State) -> Ctx<'_, B, D> {
        Ctx::new(
            &self.backend,
            &self.driver,
            state,
            self.options.retry,
            self.progress.as_ref(),
        )
    }

    async fn finish(
        &self,
        operation: &'static str,
        ctx: &Ctx<'_, B, D>,
        summary: Summary,
        failures: Vec<Failure>,
        retained: Vec<Retained>,
        started: Instant,
    ) -> Result<Report, Error> {
        let (outputs, serial) = {
            let state = ctx.state.lock().await;
            (state.outputs(), state.serial)
        };
        let (adopted, warnings) = {
            let mut notes = ctx.notes();
            (
                std::mem::take(&mut notes.adopted),
                std::mem::take(&mut notes.warnings),
            )
        };
        let report = Report {
            summary,
            calls: ctx.driver.counts(),
            elapsed: started.elapsed(),
            outputs,
            adopted,
            retained,
            warnings,
            serial,
        };
        ctx.emit(Event::Finished {
            summary,
            calls: report.calls,
            failed: failures.len(),
            elapsed: report.elapsed,
        });
        if failures.is_empty() {
            return Ok(report);
        }
        Err(Error::Failed {
            operation,
            scope: self.deployment.to_string(),
            failures,
            report: Box::new(report),
        })
    }
}
