#!/usr/bin/env node
'use strict';

// Starts the cloud simulator: prints one JSON line on stdout when ready and
// stops cleanly (store included, temporary data removed) on SIGTERM/SIGINT.

const { parseArgs, UsageError, USAGE } = require('../src/config');

async function main() {
  let config;
  try {
    config = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`cloud-simulator: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  // Loaded only now: the AWS SDK takes most of a second to load, and flag
  // errors should answer at once.
  const { Simulator } = require('../src/simulator');
  const sim = new Simulator(config);
  // Backstop: whatever happens, do not leave the temporary store behind.
  process.on('exit', () => sim.removeTempDir());

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`cloud-simulator: ${signal}, stopping\n`);
    try {
      await sim.stop();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`cloud-simulator: error while stopping: ${err.message}\n`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  try {
    await sim.start();
  } catch (err) {
    process.stderr.write(`cloud-simulator: cannot start: ${err.message}\n`);
    await sim.stop().catch(() => {});
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify(sim.announcement())}\n`);
}

main().catch((err) => {
  process.stderr.write(`cloud-simulator: ${err.stack || err}\n`);
  process.exit(1);
});
