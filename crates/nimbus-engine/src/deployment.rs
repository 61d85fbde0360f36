//! The identity of one deployment — service, stage and provider — and the scopes derived from
//! it: a state belongs to one service, stage and provider; a lock covers one service and stage.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Which deployment a state and a lock belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deployment {
    service: String,
    stage: String,
    provider: String,
}

impl Deployment {
    /// A deployment, refusing names that could not be used as a path or key segment.
    pub fn new(
        service: impl Into<String>,
        stage: impl Into<String>,
        provider: impl Into<String>,
    ) -> Result<Self, Error> {
        let deployment = Deployment {
            service: service.into(),
            stage: stage.into(),
            provider: provider.into(),
        };
        check("service", &deployment.service)?;
        check("stage", &deployment.stage)?;
        check("provider", &deployment.provider)?;
        Ok(deployment)
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The stage name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The provider id.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// `<service>/<stage>`: what one lock covers.
    pub fn lock_scope(&self) -> String {
        format!("{}/{}", self.service, self.stage)
    }

    /// `<service>/<stage>/<provider>`: where one state lives.
    pub fn state_scope(&self) -> String {
        format!("{}/{}/{}", self.service, self.stage, self.provider)
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}/{}` on `{}`",
            self.service, self.stage, self.provider
        )
    }
}

fn check(what: &'static str, value: &str) -> Result<(), Error> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value == "." || value == ".." {
        Some("it is a relative path")
    } else if value
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        Some("it contains a path separator or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            what,
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_scopes_and_bad_names_are_refused() {
        let d = Deployment::new("shop", "dev", "aws").unwrap();
        assert_eq!(d.lock_scope(), "shop/dev");
        assert_eq!(d.state_scope(), "shop/dev/aws");
        assert_eq!(d.to_string(), "`shop/dev` on `aws`");
        for bad in ["", "..", "a/b", "a\\b"] {
            let err = Deployment::new("shop", bad, "aws").unwrap_err();
            assert!(err.to_string().starts_with("invalid stage"), "{err}");
        }
    }
}
