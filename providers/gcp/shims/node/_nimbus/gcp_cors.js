'use strict';
// CORS in front of the handler on GCP, where API Gateway has no CORS setting.
//
// The neutral algorithm of nimbus_graph::cors (docs/cors.md), on the policy the packager put in
// _nimbus/function.json (the `cors` of the function's http triggers; one per function): a
// preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here with 204
// and never reaches the handler; any other response loses the handler's own Access-Control-*
// headers and gets the policy's for an allowed Origin.

const ALL = '*';

function policyOf(config) {
  for (const t of config.triggers || []) {
    if (t && t.type === 'http' && t.cors && typeof t.cors === 'object') return t.cors;
  }
  return null;
}

function originMatches(pattern, origin) {
  if (pattern === ALL || pattern === origin) return true;
  const at = pattern.indexOf('://*.');
  if (at < 0) return false;
  const prefix = pattern.slice(0, at) + '://';
  const rest = pattern.slice(at + 5);
  if (!origin.startsWith(prefix)) return false;
  const hostPort = origin.slice(prefix.length);
  if (!hostPort.endsWith('.' + rest)) return false;
  const sub = hostPort.slice(0, hostPort.length - rest.length - 1);
  return sub.length > 0 && /^[A-Za-z0-9.-]+$/.test(sub);
}

function allowsOrigin(policy, origin) {
  const o = origin.toLowerCase();
  return (policy.origins || []).some((p) => originMatches(p, o));
}

function allowOriginValue(policy, origin) {
  return !policy.credentials && (policy.origins || []).includes(ALL) ? ALL : origin;
}

function preflightHeaders(policy, origin, method, requested) {
  const out = [['vary', 'Origin']];
  const methods = policy.methods || [];
  const allowed = policy.allow_headers || [];
  const wanted = String(requested || '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  if (!allowsOrigin(policy, origin) ||
      !(methods.includes(ALL) || methods.includes(method)) ||
      !wanted.every((h) => allowed.includes(ALL) || allowed.includes(h))) return out;
  out.push(['access-control-allow-origin', allowOriginValue(policy, origin)]);
  out.push(['access-control-allow-methods', methods.join(', ')]);
  if (allowed.length) out.push(['access-control-allow-headers', allowed.join(', ')]);
  if (policy.credentials) out.push(['access-control-allow-credentials', 'true']);
  if (policy.max_age_secs !== undefined && policy.max_age_secs !== null) {
    out.push(['access-control-max-age', String(policy.max_age_secs)]);
  }
  return out;
}

function actualHeaders(policy, origin) {
  const out = [['vary', 'Origin']];
  if (!allowsOrigin(policy, origin)) return out;
  out.push(['access-control-allow-origin', allowOriginValue(policy, origin)]);
  if ((policy.expose_headers || []).length) {
    out.push(['access-control-expose-headers', policy.expose_headers.join(', ')]);
  }
  if (policy.credentials) out.push(['access-control-allow-credentials', 'true']);
  return out;
}

// The [status, pairs] answer when the request is a preflight, else null.
function preflight(policy, method, headers) {
  const origin = headers.origin;
  const wanted = headers['access-control-request-method'];
  if (String(method).toUpperCase() !== 'OPTIONS' || !origin || !wanted) return null;
  return [204, preflightHeaders(policy, origin, wanted, headers['access-control-request-headers'])];
}

// The handler's response headers with the policy's CORS headers in place of its own.
function onResponse(policy, requestHeaders, pairs) {
  let kept = pairs.filter(([k]) => !k.toLowerCase().startsWith('access-control-'));
  const origin = requestHeaders.origin;
  if (!origin) return kept;
  let added = actualHeaders(policy, origin);
  const vary = kept.filter(([k]) => k.toLowerCase() === 'vary').map(([, v]) => v);
  kept = kept.filter(([k]) => k.toLowerCase() !== 'vary');
  if (vary.length) added = added.map(([k, v]) => (k === 'vary' ? ['vary', [...vary, 'Origin'].join(', ')] : [k, v]));
  return kept.concat(added);
}

module.exports = { policyOf, originMatches, preflightHeaders, actualHeaders, preflight, onResponse };
