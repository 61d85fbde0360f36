'use strict';
// Cloud Functions entry point of a Nimbus Node.js package: target `nimbus_entry`
// (the packager writes the root package.json {"main": "_nimbus_gcp.js"}).
const gcp = require('./_nimbus/gcp.js');

gcp.init(); // cold start: start loading function.json + the user's handler now

// One parameter on purpose: functions-framework treats cloudevent functions with more
// than one parameter as callback-style. Under the http signature the response is arguments[1].
function nimbus_entry(reqOrEvent) { // eslint-disable-line camelcase
  return gcp.entry(reqOrEvent, arguments[1]); // eslint-disable-line prefer-rest-params
}

gcp.registerSignature('nimbus_entry', nimbus_entry);

exports.nimbus_entry = nimbus_entry; // eslint-disable-line camelcase
