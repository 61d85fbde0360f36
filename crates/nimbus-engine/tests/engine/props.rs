//! Property: for random desired sets (random dependency DAGs, references, names, kinds and
//! replace rules), applying one and then a random mutation of it always leaves the cloud equal
//! to what is desired and the state equal to the cloud, and a repeat apply writes nothing.

use nimbus_engine::{NativeResource, reference};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{FakeCloud, Fixture, assert_converged};

/// One resource slot: present?, a property value, dependencies on lower slots (bit mask),
/// whether it refers to its first dependency, named?, which kind, replace on `v`?
type Slot = (bool, u8, u8, bool, bool, bool, bool);

const SLOTS: usize = 8;

fn build(slots: &[Slot]) -> Vec<NativeResource> {
    let present: Vec<bool> = slots.iter().map(|s| s.0).collect();
    let mut out = Vec::new();
    for (i, &(here, value, mask, refers, named, kind_b, replace)) in slots.iter().enumerate() {
        if !here {
            continue;
        }
        let deps: Vec<String> = (0..i)
            .filter(|&j| mask & (1 << j) != 0 && present[j])
            .map(|j| format!("r{j}"))
            .collect();
        let mut properties = json!({ "v": value % 4, "w": value / 64 });
        if refers && let Some(first) = deps.first() {
            properties["link"] = reference(first, "arn");
        }
        out.push(NativeResource {
            id: format!("r{i}"),
            kind: if kind_b {
                "fake.b".into()
            } else {
                "fake.a".into()
            },
            physical_name: named.then(|| format!("name-{i}")),
            properties,
            depends_on: deps,
            replace_on: if replace {
                vec!["v".into()]
            } else {
                Vec::new()
            },
            retain_data: false,
        });
    }
    out
}

fn slots() -> impl Strategy<Value = Vec<Slot>> {
    proptest::collection::vec(any::<Slot>(), SLOTS)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_mutate_always_converges(first in slots(), second in slots(), parallelism in 1usize..5) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let fixture = Fixture::memory();
            let cloud = FakeCloud::new();
            let options = nimbus_engine::Options { parallelism, ..crate::support::options() };
            let engine = fixture.engine_with(&cloud, options);
            for desired in [build(&first), build(&second)] {
                let plan = engine.plan(&desired, false).await.unwrap();
                let report = engine.apply(&desired).await.unwrap();
                prop_assert_eq!(report.summary, plan.summary);
                // Nothing desired and nothing deployed yet: no state is written at all.
                let state = engine.state().await.unwrap();
                let state = state.unwrap_or_else(|| nimbus_engine::State::new(&crate::support::deployment()));
                assert_converged(&cloud, &state, &desired);
                let again = engine.apply(&desired).await.unwrap();
                prop_assert_eq!(again.calls.writes(), 0);
            }
            prop_assert!(cloud.creations().values().all(|&n| n >= 1));
            Ok(())
        })?;
    }
}
