'use strict';
// args.js: the command line shared by the example actors: --name VALUE
// options, each known to the actor, and --flag options without a value
// (false unless given); anything else is a usage error (stderr, exit 2).

function parseArgs(prog, argv, defaults, flags = []) {
  const opts = { ...defaults };
  for (const f of flags) opts[f] = false;
  const usage = () => {
    const words = Object.keys(defaults).map((k) => `[--${k} ${k === 'port' ? 'N' : k[0].toUpperCase()}]`);
    for (const f of flags) words.push(`[--${f}]`);
    process.stderr.write(`usage: ${prog} ${words.join(' ')}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (m && flags.includes(m[1]) && m[2] === undefined) {
      opts[m[1]] = true;
      continue;
    }
    if (!m || !(m[1] in defaults)) usage();
    const value = m[2] !== undefined ? m[2] : argv[++i];
    if (value === undefined) usage();
    if (m[1] === 'port') {
      if (!/^\d+$/.test(value) || Number(value) > 65535) {
        process.stderr.write(`${prog}: ERR_SOCKET_BAD_PORT: port should be >= 0 and < 65536, got ${value}\n`);
        process.exit(1);
      }
      opts.port = Number(value);
    } else {
      opts[m[1]] = value;
    }
  }
  return opts;
}

module.exports = { parseArgs };
