'use strict';
// Cold-start resolution of Nimbus secrets on AWS Lambda (Node.js).
//
// Lowering puts only a reference in the function's environment, never a value:
// NIMBUS_SECRET_<VAR>=<Secrets Manager secret ARN> for each environment variable <VAR> the function
// declared as `{ secret: NAME }`. resolve() runs once per process (the Lambda container), BEFORE the
// user's handler module is loaded: it reads each referenced secret with Secrets Manager GetSecretValue
// through the AWS SDK v3 (which the Node.js Lambda runtimes ship) and sets process.env[<VAR>] to its
// value, so the handler reads process.env.<VAR> exactly as it does locally. Warm invocations reuse
// the values (no further calls). A failure rejects with SecretError naming the variable and the ARN
// (never a value); it is not cached, so the next invocation tries again.
// See docs/function-contract.md, "Secrets".

const PREFIX = 'NIMBUS_SECRET_';

class SecretError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SecretError';
  }
}

// {VAR: ARN} of every NIMBUS_SECRET_<VAR> reference in `env`.
function references(env = process.env) {
  const refs = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith(PREFIX) && k.length > PREFIX.length && v) refs[k.slice(PREFIX.length)] = v;
  }
  return refs;
}

function sdkClient() {
  let sdk;
  try {
    sdk = require('@aws-sdk/client-secrets-manager');
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new SecretError('resolving secrets needs @aws-sdk/client-secrets-manager (the Node.js Lambda runtimes ship it)');
    }
    throw e;
  }
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  const client = new sdk.SecretsManagerClient(region ? { region } : {});
  return { getSecretValue: (input) => client.send(new sdk.GetSecretValueCommand(input)) };
}

async function value(client, name, arn) {
  let out;
  try {
    out = await client.getSecretValue({ SecretId: arn });
  } catch (e) {
    const code = (e && (e.name || e.code)) || 'Error';
    throw new SecretError(`secret for environment variable ${name} (${arn}) could not be read from AWS Secrets Manager: `
      + `${code}: ${e && e.message}; check that \`nimbus secret set\` gave it a value for this stage and that the `
      + "function's role may call secretsmanager:GetSecretValue on it");
  }
  if (out && typeof out.SecretString === 'string') return out.SecretString;
  throw new SecretError(`secret for environment variable ${name} (${arn}) holds binary data; Nimbus secrets are text `
    + '(set it again with `nimbus secret set`)');
}

// Sets each referenced variable in `env` to its secret's value (all or nothing); resolves to the names set.
async function resolveInto(env, client) {
  const refs = references(env);
  const names = Object.keys(refs).sort();
  if (!names.length) return [];
  const c = client || sdkClient();
  const values = {};
  for (const name of names) values[name] = await value(c, name, refs[name]);
  Object.assign(env, values);
  return names;
}

let pending = null;

// Once per process: resolves process.env's references; a failure is forgotten so a later call retries.
function resolve() {
  if (!pending) {
    pending = resolveInto(process.env).catch((e) => {
      pending = null;
      throw e;
    });
  }
  return pending;
}

// Forget that this process resolved its secrets (tests).
function reset() {
  pending = null;
}

module.exports = { PREFIX, SecretError, references, resolveInto, resolve, reset };
