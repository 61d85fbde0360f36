//! Route authentication: an API key in a header, or a JWT (HS256 or RS256) with the issuer and
//! audience the manifest names.
//!
//! The keys come from the local deployment: the API key is generated per deployment (or given
//! with `NIMBUS_LOCAL_API_KEY`) and shown by `nimbus info`; JWTs are checked against
//! `NIMBUS_JWT_SECRET` (HS256) or the PEM public key in `NIMBUS_JWT_PUBLIC_KEY` (RS256).
//! Missing or invalid credentials answer 401; a valid token for the wrong issuer or audience,
//! or a wrong API key, 403 — as API gateways do. A token is refused before its `nbf` and after
//! its `exp`, each with [`JWT_LEEWAY_SECS`] of leeway.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use nimbus_manifest::Auth;

/// Clock skew allowed on a token's `exp` and `nbf`, in seconds (what API gateways allow).
pub const JWT_LEEWAY_SECS: u64 = 60;

/// Secrets the gateway checks credentials against.
#[derive(Debug, Clone, Default)]
pub struct AuthKeys {
    /// The deployment's API key.
    pub api_key: String,
    /// HS256 secret.
    pub jwt_secret: Option<String>,
    /// RS256 public key, PEM.
    pub jwt_public_key_pem: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No or unusable credentials: 401.
    Unauthorized(String),
    /// Credentials that do not grant this route: 403.
    Forbidden(String),
}

/// Checks a request's headers (lower-cased names) against a route's `auth`.
pub fn check(
    auth: &Auth,
    header: &dyn Fn(&str) -> Option<String>,
    keys: &AuthKeys,
) -> Result<(), Denied> {
    match auth {
        Auth::None => Ok(()),
        Auth::ApiKey(cfg) => {
            let name = cfg.header.to_ascii_lowercase();
            match header(&name) {
                None => Err(Denied::Unauthorized(format!(
                    "missing API key: send it in the `{name}` header"
                ))),
                Some(k) if constant_time_eq(k.as_bytes(), keys.api_key.as_bytes()) => Ok(()),
                Some(_) => Err(Denied::Forbidden("the API key is not valid".into())),
            }
        }
        Auth::Jwt(cfg) => {
            let Some(value) = header("authorization") else {
                return Err(Denied::Unauthorized(
                    "missing `Authorization: Bearer <token>` header".into(),
                ));
            };
            let Some(token) = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
            else {
                return Err(Denied::Unauthorized(
                    "the `Authorization` header must be `Bearer <token>`".into(),
                ));
            };
            let header = decode_header(token)
                .map_err(|e| Denied::Unauthorized(format!("malformed token: {e}")))?;
            let key = match header.alg {
                Algorithm::HS256 => keys
                    .jwt_secret
                    .as_ref()
                    .map(|s| DecodingKey::from_secret(s.as_bytes()))
                    .ok_or_else(|| {
                        Denied::Unauthorized(
                            "HS256 tokens need NIMBUS_JWT_SECRET set for the local runtime".into(),
                        )
                    })?,
                Algorithm::RS256 => {
                    let pem = keys.jwt_public_key_pem.as_ref().ok_or_else(|| {
                        Denied::Unauthorized(
                            "RS256 tokens need NIMBUS_JWT_PUBLIC_KEY set for the local runtime"
                                .into(),
                        )
                    })?;
                    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                        Denied::Unauthorized(format!(
                            "the configured RS256 public key is unusable: {e}"
                        ))
                    })?
                }
                other => {
                    return Err(Denied::Unauthorized(format!(
                        "token algorithm {other:?} is not accepted; use HS256 or RS256"
                    )));
                }
            };
            // Signature, expiry and not-before first (401), then issuer and audience (403).
            // `exp` and `nbf` both get the usual 60 s of leeway for clock skew.
            let mut validation = Validation::new(header.alg);
            validation.validate_aud = false;
            validation.validate_nbf = true;
            validation.leeway = JWT_LEEWAY_SECS;
            validation.set_required_spec_claims(&["exp"]);
            let data = decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
                Denied::Unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired (`exp`)".into(),
                    ErrorKind::ImmatureSignature => {
                        "the token is not valid yet (`nbf` is in the future)".into()
                    }
                    _ => format!("invalid token: {e}"),
                })
            })?;
            let claims = data.claims;
            if claims.get("iss").and_then(|v| v.as_str()) != Some(cfg.issuer.as_str()) {
                return Err(Denied::Forbidden(format!(
                    "the token's issuer is not `{}`",
                    cfg.issuer
                )));
            }
            let aud_ok = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == &cfg.audience,
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .any(|a| a.as_str() == Some(cfg.audience.as_str())),
                _ => false,
            };
            if !aud_ok {
                return Err(Denied::Forbidden(format!(
                    "the token's audience does not include `{}`",
                    cfg.audience
                )));
            }
            Ok(())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use nimbus_manifest::{ApiKeyAuth, JwtAuth};

    fn keys() -> AuthKeys {
        AuthKeys {
            api_key: "k3y".into(),
            jwt_secret: Some("s3cret".into()),
            jwt_public_key_pem: None,
        }
    }

    fn headers<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn api_key() {
        let auth = Auth::ApiKey(ApiKeyAuth {
            header: "X-Api-Key".into(),
        });
        assert!(matches!(
            check(&auth, &headers(&[]), &keys()),
            Err(Denied::Unauthorized(_))
        ));
        assert!(matches!(
            check(&auth, &headers(&[("x-api-key", "nope".into())]), &keys()),
            Err(Denied::Forbidden(_))
        ));
        assert_eq!(
            check(&auth, &headers(&[("x-api-key", "k3y".into())]), &keys()),
            Ok(())
        );
        assert_eq!(check(&Auth::None, &headers(&[]), &keys()), Ok(()));
    }

    #[test]
    fn jwt_hs256() {
        let auth = Auth::Jwt(JwtAuth {
            issuer: "https://issuer".into(),
            audience: "shop".into(),
        });
        let exp = chrono::Utc::now().timestamp() + 600;
        let good = token(
            "s3cret",
            serde_json::json!({ "iss": "https://issuer", "aud": ["x", "shop"], "exp": exp }),
        );
        let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
        assert_eq!(check(&auth, &headers(&bearer(&good)), &keys()), Ok(()));
        let forged = token(
            "other",
            serde_json::json!({ "iss": "https://issuer", "aud": "shop", "exp": exp }),
        );
        assert!(matches!(
            check(&auth, &headers(&bearer(&forged)), &keys()),
            Err(Denied::Unauthorized(_))
        ));
        let expired = token(
            "s3cret",
            serde_json::json!({ "iss": "https://issuer", "aud": "shop", "exp": exp - 7200 }),
        );
        assert!(matches!(
            check(&auth, &headers(&bearer(&expired)), &keys()),
            Err(Denied::Unauthorized(_))
        ));
        // Not valid yet: refused beyond the leeway, accepted within it.
        let now = chrono::Utc::now().timestamp();
        let early = token(
            "s3cret",
            serde_json::json!({ "iss": "https://issuer", "aud": "shop", "exp": exp, "nbf": now + 600 }),
        );
        match check(&auth, &headers(&bearer(&early)), &keys()) {
            Err(Denied::Unauthorized(m)) => assert!(m.contains("not valid yet"), "{m}"),
            other => panic!("a token before its nbf: {other:?}"),
        }
        let skewed = token(
            "s3cret",
            serde_json::json!({ "iss": "https://issuer", "aud": "shop", "exp": exp, "nbf": now + 30 }),
        );
        assert_eq!(check(&auth, &headers(&bearer(&skewed)), &keys()), Ok(()));
        let wrong_aud = token(
            "s3cret",
            serde_json::json!({ "iss": "https://issuer", "aud": "other", "exp": exp }),
        );
        assert!(matches!(
            check(&auth, &headers(&bearer(&wrong_aud)), &keys()),
            Err(Denied::Forbidden(_))
        ));
        let wrong_iss = token(
            "s3cret",
            serde_json::json!({ "iss": "https://evil", "aud": "shop", "exp": exp }),
        );
        assert!(matches!(
            check(&auth, &headers(&bearer(&wrong_iss)), &keys()),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            check(&auth, &headers(&[]), &keys()),
            Err(Denied::Unauthorized(_))
        ));
        assert!(matches!(
            check(
                &auth,
                &headers(&[("authorization", "Basic abc".into())]),
                &keys()
            ),
            Err(Denied::Unauthorized(_))
        ));
    }

    #[test]
    fn jwt_rs256_with_a_fresh_key_pair() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.pem");
        let public = dir.path().join("public.pem");
        let ok = std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&private)
            .arg("2048")
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let ok = std::process::Command::new("openssl")
            .arg("rsa")
            .arg("-in")
            .arg(&private)
            .arg("-pubout")
            .arg("-out")
            .arg(&public)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let keys = AuthKeys {
            jwt_public_key_pem: Some(std::fs::read_to_string(&public).unwrap()),
            ..keys()
        };
        let signing = EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap();
        let claims = serde_json::json!({ "iss": "https://issuer", "aud": "shop", "exp": chrono::Utc::now().timestamp() + 600 });
        let token = encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap();
        let auth = Auth::Jwt(JwtAuth {
            issuer: "https://issuer".into(),
            audience: "shop".into(),
        });
        let bearer = vec![("authorization", format!("Bearer {token}"))];
        assert_eq!(check(&auth, &headers(&bearer), &keys), Ok(()));
        // Without the public key configured, RS256 tokens are refused with a hint.
        match check(
            &auth,
            &headers(&bearer),
            &AuthKeys {
                jwt_public_key_pem: None,
                ..keys.clone()
            },
        ) {
            Err(Denied::Unauthorized(m)) => assert!(m.contains("NIMBUS_JWT_PUBLIC_KEY"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A token signed by another key fails.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            check(
                &auth,
                &headers(&[("authorization", format!("Bearer {tampered}"))]),
                &keys
            ),
            Err(Denied::Unauthorized(_))
        ));
    }
}
