'use strict';
// netcore.js: the netcore-net library the JavaScript actors use. The installed npm
// package when there is one (docker/node.Dockerfile installs the `npm pack` tarball
// beside the actors), else the library of this checkout (client/node), so
// `node actors/node/echo.js` keeps running from the repository. Any other load
// error (a missing dependency inside the package) is thrown as it is.

function load() {
  try {
    return require('netcore-net');
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes("'netcore-net'")) throw e;
    return require('../../client/node');
  }
}

module.exports = load();
