//! Deploy time of the shop (without `audit-orders`) against Azurite and the ARM test double,
//! median of N runs, next to the median of N unchanged redeploys (the baseline) in the same run.
//!
//! Each fresh deploy starts from empty Azurite and ARM double (started before the clock runs), so
//! it creates the resource group and the deployment storage account, uploads the six packages,
//! PUTs the template and polls it; each baseline is an unchanged redeploy right after it (lock,
//! state read, upload checks, no PUT). The double runs in Python and evaluates the template, so
//! its time is part of what is measured.
//!
//! `cargo run --release -p nimbus-azure --example bench_deploy -- [N]` (default 5); needs the
//! test tools (`scripts/test` or `source scripts/lib/tools.sh && ensure_venv && ensure_node_modules`).

#[path = "../tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

use std::time::{Duration, Instant};

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use nimbus_cloud::{Cloud, DeployOptions, Options, Target};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let shop = common::build_shop();
    let target = Target {
        graph: &shop.graph,
        build: &shop.build,
        build_dir: &shop.out,
    };
    let mut fresh = Vec::new();
    let mut unchanged = Vec::new();
    for _ in 0..runs {
        let azurite = Azurite::start();
        let double = ArmDouble::start(&azurite);
        let env: std::collections::BTreeMap<&str, String> = [
            (
                "AZURE_SUBSCRIPTION_ID",
                "00000000-0000-0000-0000-00000000be9c".to_string(),
            ),
            ("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN.to_string()),
            ("NIMBUS_AZURE_ARM_ENDPOINT", double.url()),
            ("NIMBUS_AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint()),
            ("NIMBUS_AZURE_STORAGE_KEY", KEY.to_string()),
        ]
        .into();
        let lookup = move |name: &str| env.get(name).cloned();
        let azure = nimbus_azure::connect_with(&shop.graph, Options::default(), &lookup)
            .await
            .unwrap();
        let t = Instant::now();
        let d = azure
            .deploy(&target, DeployOptions::default())
            .await
            .unwrap();
        fresh.push(t.elapsed());
        assert!(d.report.summary.create > 80, "{:?}", d.report.summary);
        let t = Instant::now();
        let d = azure
            .deploy(&target, DeployOptions::default())
            .await
            .unwrap();
        unchanged.push(t.elapsed());
        assert_eq!(d.report.summary.changes(), 0);
    }
    let (f, u) = (median(fresh.clone()), median(unchanged.clone()));
    println!("fresh deploys:       {fresh:?}");
    println!("unchanged redeploys: {unchanged:?}");
    println!(
        "shop deploy against Azurite + ARM test double: median {:.0} ms over {runs} runs; unchanged redeploy median {:.0} ms; ratio {:.1}x",
        f.as_secs_f64() * 1000.0,
        u.as_secs_f64() * 1000.0,
        f.as_secs_f64() / u.as_secs_f64()
    );
}
