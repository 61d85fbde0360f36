'use strict';
// Preloaded (node --require) into the real functions-framework CLI so that it listens on
// 127.0.0.1 only: its CLI has no --host option and would otherwise bind every interface.
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
