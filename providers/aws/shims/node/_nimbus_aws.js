'use strict';
// AWS Lambda entry point of a Nimbus Node.js package (handler string `_nimbus_aws.handler`).
const aws = require('./_nimbus/aws.js');

aws.init(); // cold start: start loading function.json + the user's handler now (errors surface on invoke)

exports.handler = aws.handler;
