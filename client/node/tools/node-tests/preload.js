'use strict';
// preload.js (node -r): runs one of Node's own test/parallel/test-net-*.js
// files against this library, "with nothing changed but that require":
// require('net') is netcore-net, and require('../common') is common.js here
// (the public-behaviour part of Node's test/common: mustCall & co.).
// Used by run.sh; nothing in the library or the test suite loads it.

const Module = require('module');
const path = require('path');

const ours = require(path.resolve(__dirname, '..', '..'));
const common = path.join(__dirname, 'common.js');
const load = Module._load;
Module._load = function loadSwapped(request, parent, isMain) {
  if (request === 'net' || request === 'node:net') return ours;
  if (request === '../common' || request === '../common/index' || request === '../common/index.js') {
    return load.call(this, common, parent, isMain);
  }
  return load.call(this, request, parent, isMain);
};
