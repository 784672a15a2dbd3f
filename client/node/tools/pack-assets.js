'use strict';
// pack-assets.js: npm's prepack/postpack step. The package must work without
// the repository around it, so `npm pack` ships copies of the two files the
// library reads at load time: the protocol (proto/netcore.proto) and the error
// table (common/include/nc_errors.h), plus the project's LICENSE. `node tools/pack-assets.js copy`
// puts them beside package.json; `... clean` removes them again so the
// working tree keeps using the originals.

const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const assets = {
  'netcore.proto': path.join(root, '..', '..', 'proto', 'netcore.proto'),
  'nc_errors.h': path.join(root, '..', '..', 'common', 'include', 'nc_errors.h'),
  LICENSE: path.join(root, '..', '..', 'LICENSE'),
};

const mode = process.argv[2];
for (const [name, src] of Object.entries(assets)) {
  const dest = path.join(root, name);
  if (mode === 'copy') fs.copyFileSync(src, dest);
  else if (mode === 'clean') fs.rmSync(dest, { force: true });
  else throw new Error('usage: pack-assets.js copy|clean');
}
