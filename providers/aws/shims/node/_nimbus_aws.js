'use strict';
// AWS Lambda entry point of a Nimbus Node.js package (handler string `_nimbus_aws.handler`).
const aws = require('./_nimbus/aws.js');

aws.init().catch(() => {}); // cold start: resolve secrets, then load function.json + the user's handler (errors surface on invoke)

exports.handler = aws.handler;
