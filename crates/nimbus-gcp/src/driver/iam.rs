//! IAM members as read-modify-write of a resource's policy: where each kind's policy is read and
//! written, adding or removing one member of one role (and condition), and the physical id that
//! names a member.
//!
//! | kind | read | write |
//! |---|---|---|
//! | project | `POST v1/projects/P:getIamPolicy` (`options.requestedPolicyVersion` in the body) | `POST …:setIamPolicy` |
//! | topic, subscription | `GET v1/projects/P/topics/T:getIamPolicy?options.requestedPolicyVersion=3` | `POST …:setIamPolicy` |
//! | Cloud Run service | `GET v2/…/services/S:getIamPolicy?options.requestedPolicyVersion=3` | `POST …:setIamPolicy` |
//! | bucket | `GET storage/v1/b/B/iam?optionsRequestedPolicyVersion=3` | `PUT storage/v1/b/B/iam` (the policy itself) |
//!
//! The policy written back carries the `etag` it was read with, so a concurrent change is refused
//! by Google (409 or 412), which is retryable: the engine reads and edits again.

use reqwest::Method;
use serde_json::{Value, json};

use super::{GcpDriver, R, de, str_of};
use crate::api::urlencode;
use crate::kinds;

/// How one kind's policy is read and written.
struct PolicyCalls {
    get: String,
    get_method: Method,
    get_body: Option<Value>,
    set: String,
    set_method: Method,
    /// `setIamPolicy` takes `{"policy": …}`; Cloud Storage takes the policy itself.
    wrap: bool,
}

impl GcpDriver {
    fn policy_calls(&self, kind: &str, p: &Value) -> PolicyCalls {
        let (api, resource) = match kind {
            kinds::PROJECT_IAM_MEMBER => {
                let resource = format!("/v1/projects/{}", str_of(p, "project"));
                return PolicyCalls {
                    get: self.url("cloudresourcemanager", &format!("{resource}:getIamPolicy")),
                    get_method: Method::POST,
                    get_body: Some(json!({ "options": { "requestedPolicyVersion": 3 } })),
                    set: self.url("cloudresourcemanager", &format!("{resource}:setIamPolicy")),
                    set_method: Method::POST,
                    wrap: true,
                };
            }
            kinds::TOPIC_IAM_MEMBER => ("pubsub", format!("/v1/{}", str_of(p, "topic"))),
            kinds::SUBSCRIPTION_IAM_MEMBER => {
                ("pubsub", format!("/v1/{}", str_of(p, "subscription")))
            }
            kinds::SERVICE_IAM_MEMBER => ("run", format!("/v2/{}", str_of(p, "service"))),
            kinds::SECRET_IAM_MEMBER => ("secretmanager", format!("/v1/{}", str_of(p, "secret"))),
            _ => {
                let b = format!("/storage/v1/b/{}/iam", urlencode(str_of(p, "bucket")));
                return PolicyCalls {
                    get: self.url("storage", &format!("{b}?optionsRequestedPolicyVersion=3")),
                    get_method: Method::GET,
                    get_body: None,
                    set: self.url("storage", &b),
                    set_method: Method::PUT,
                    wrap: false,
                };
            }
        };
        PolicyCalls {
            get: self.url(
                api,
                &format!("{resource}:getIamPolicy?options.requestedPolicyVersion=3"),
            ),
            get_method: Method::GET,
            get_body: None,
            set: self.url(api, &format!("{resource}:setIamPolicy")),
            set_method: Method::POST,
            wrap: true,
        }
    }

    /// Adds (`add`) or removes the member of `p` in the role (and condition) of `p`.
    pub(super) async fn edit_policy(&self, kind: &str, p: &Value, add: bool) -> R<()> {
        let calls = self.policy_calls(kind, p);
        let mut policy = match self
            .client
            .json(calls.get_method, &calls.get, calls.get_body.as_ref())
            .await
        {
            Ok(v) => v,
            Err(e) if e.not_found() && !add => return Ok(()),
            Err(e) => return Err(de(e)),
        };
        if !policy.is_object() {
            return Err(nimbus_engine::DriverError::permanent(format!(
                "{}: the policy is not an object",
                calls.get
            )));
        }
        if !edit(&mut policy, p, add) {
            return Ok(());
        }
        let body = if calls.wrap {
            json!({ "policy": policy })
        } else {
            policy
        };
        match self
            .client
            .json(calls.set_method, &calls.set, Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            // The etag no longer matches: someone changed the policy; read it again.
            Err(e) if e.conflict() || e.status == Some(412) => {
                Err(nimbus_engine::DriverError::retryable(e.to_string()))
            }
            Err(e) => Err(de(e)),
        }
    }

    /// Whether the member of `p` is in the policy.
    pub(super) async fn has_member(&self, kind: &str, p: &Value) -> R<bool> {
        let calls = self.policy_calls(kind, p);
        let policy = match self
            .client
            .json(calls.get_method, &calls.get, calls.get_body.as_ref())
            .await
        {
            Ok(v) => v,
            Err(e) if e.not_found() => return Ok(false),
            Err(e) => return Err(de(e)),
        };
        let condition = p.get("condition");
        Ok(policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| {
                b["role"] == p["role"]
                    && b.get("condition") == condition
                    && b["members"]
                        .as_array()
                        .is_some_and(|m| m.iter().any(|x| *x == p["member"]))
            }))
    }
}

/// Adds or removes `p`'s member in `policy`; whether anything changed. A binding with a
/// condition needs policy version 3.
fn edit(policy: &mut Value, p: &Value, add: bool) -> bool {
    let role = str_of(p, "role").to_string();
    let member = str_of(p, "member").to_string();
    let condition = p.get("condition").cloned();
    if !policy["bindings"].is_array() {
        policy["bindings"] = json!([]);
    }
    let Some(list) = policy["bindings"].as_array_mut() else {
        return false;
    };
    let pos = list
        .iter()
        .position(|b| b["role"] == role.as_str() && b.get("condition") == condition.as_ref());
    let changed = match (add, pos) {
        (true, Some(i)) => match list[i]["members"].as_array_mut() {
            Some(m) if m.iter().any(|x| *x == member.as_str()) => false,
            Some(m) => {
                m.push(json!(member));
                true
            }
            None => {
                list[i]["members"] = json!([member]);
                true
            }
        },
        (true, None) => {
            let mut b = json!({ "role": role, "members": [member] });
            if let Some(c) = &condition {
                b["condition"] = c.clone();
            }
            list.push(b);
            true
        }
        (false, Some(i)) => {
            let before = list[i]["members"].as_array().map_or(0, Vec::len);
            if let Some(m) = list[i]["members"].as_array_mut() {
                m.retain(|x| *x != member.as_str());
            }
            let after = list[i]["members"].as_array().map_or(0, Vec::len);
            if after == 0 {
                list.remove(i);
            }
            before != after
        }
        (false, None) => false,
    };
    let conditional = policy["bindings"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b.get("condition").is_some()));
    if changed && conditional {
        policy["version"] = json!(3);
    }
    changed
}

/// The physical id of an IAM member: `<resource> <role> <member>[ <condition as JSON>]`.
pub(super) fn member_id(p: &Value) -> String {
    let resource = [
        "project",
        "topic",
        "subscription",
        "service",
        "bucket",
        "secret",
    ]
    .iter()
    .find_map(|k| p.get(*k).and_then(Value::as_str))
    .unwrap_or_default();
    let mut id = format!("{resource} {} {}", str_of(p, "role"), str_of(p, "member"));
    if let Some(c) = p.get("condition") {
        id.push(' ');
        id.push_str(&c.to_string());
    }
    id
}

/// The properties an IAM member's physical id stands for.
pub(super) fn member_properties(kind: &str, id: &str) -> Option<Value> {
    let mut parts = id.splitn(4, ' ');
    let (resource, role, member) = (parts.next()?, parts.next()?, parts.next()?);
    let key = match kind {
        kinds::PROJECT_IAM_MEMBER => "project",
        kinds::TOPIC_IAM_MEMBER => "topic",
        kinds::SUBSCRIPTION_IAM_MEMBER => "subscription",
        kinds::SERVICE_IAM_MEMBER => "service",
        kinds::BUCKET_IAM_MEMBER => "bucket",
        kinds::SECRET_IAM_MEMBER => "secret",
        _ => return None,
    };
    let mut p = json!({ key: resource, "role": role, "member": member });
    if let Some(c) = parts.next() {
        p["condition"] = serde_json::from_str(c).ok()?;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_added_once_and_removed_with_their_binding() {
        let p = json!({"project": "p", "role": "roles/x", "member": "user:a"});
        let mut policy = json!({"etag": "e"});
        assert!(edit(&mut policy, &p, true));
        assert!(!edit(&mut policy, &p, true), "already there");
        assert_eq!(
            policy["bindings"],
            json!([{"role": "roles/x", "members": ["user:a"]}])
        );
        assert!(edit(&mut policy, &p, false));
        assert_eq!(policy["bindings"], json!([]));
        let c = json!({"project": "p", "role": "roles/x", "member": "user:a", "condition": {"title": "t", "expression": "true"}});
        assert!(edit(&mut policy, &c, true));
        assert_eq!(policy["version"], 3);
        let id = member_id(&c);
        assert_eq!(
            member_properties(kinds::PROJECT_IAM_MEMBER, &id).unwrap(),
            c
        );
    }
}
