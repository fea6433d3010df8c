// Preloaded into upstream test servers (NODE_OPTIONS=--require) that listen on every
// interface: a port without a host is bound to 127.0.0.1 only, so tests stay on loopback.
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function loopbackListen(...args) {
  const portOnly = typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]));
  if (portOnly && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args);
};
