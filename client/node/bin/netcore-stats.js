#!/usr/bin/env node
'use strict';
// Prints netcore's numbers (the Stats command) as one JSON object:
// netcore-net's stats() result, the same series as netcore's /metrics.
// usage: node netcore-stats.js [--endpoint ENDPOINT]
const net = require('../lib');

const i = process.argv.indexOf('--endpoint');
const endpoint = i > 0 ? process.argv[i + 1] : undefined;
net.stats({ endpoint }).then(
  (st) => process.stdout.write(`${JSON.stringify(st)}\n`),
  (err) => {
    process.stderr.write(`netcore-stats: ${err.code}: ${err.message}\n`);
    process.exitCode = 1;
  },
);
