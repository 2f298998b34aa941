// Encrypt files to ZTDF with the OpenTDF JavaScript client, offline: the key share is
// wrapped to a KAS public key given as a PEM file; no KAS, no identity provider is
// contacted. Used by relto's interop tests (tests/interop/test_js_client.py).
//
//   node encrypt.js [--segment-size N] KAS_URL KAS_PUBLIC_KEY.pem IN OUT [IN OUT ...]
//
// --segment-size sets the client's `windowSize` (default 1 MiB, the client's own).
// Prints one JSON line: {"client": "@opentdf/client@<version>", "written": [OUT ...]}.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

// streamsaver (a browser download helper the client imports but offline encryption
// never uses) touches `document` when loaded: stand in an empty module for it.
const streamsaverPath = require.resolve('streamsaver');
require.cache[streamsaverPath] = {
  id: streamsaverPath,
  filename: streamsaverPath,
  loaded: true,
  exports: {},
};

// The package's main module assigns `window.TDF` (a browser global) when loaded; the
// TDF3 client module beneath it does not.
const clientMain = require.resolve('@opentdf/client'); // .../dist/cjs/tdf3/index.js
const { Client } = require(path.join(path.dirname(clientMain), 'src', 'client', 'index.js'));
const packageJson = path.join(path.dirname(clientMain), '..', '..', '..', 'package.json');
const { name, version } = JSON.parse(fs.readFileSync(packageJson, 'utf8'));

// Offline encryption needs no credentials; the client still wants an auth provider.
const noAuth = {
  async updateClientPublicKey() {},
  async withCreds(request) {
    return request;
  },
};

async function encryptOne(client, input, output, windowSize) {
  const data = fs.readFileSync(input);
  const source = new ReadableStream({
    pull(controller) {
      if (data.length) controller.enqueue(new Uint8Array(data));
      controller.close();
    },
  });
  const stream = await client.encrypt({ offline: true, source, ...(windowSize && { windowSize }) });
  const bytes = await stream.toBuffer();
  fs.writeFileSync(output, bytes);
}

async function main() {
  const args = process.argv.slice(2);
  let windowSize;
  if (args[0] === '--segment-size') {
    windowSize = Number.parseInt(args[1], 10);
    args.splice(0, 2);
  }
  const [kasUrl, pemPath, ...pairs] = args;
  const badSize = windowSize !== undefined && !(windowSize > 0);
  if (badSize || !kasUrl || !pemPath || pairs.length === 0 || pairs.length % 2) {
    console.error(
      'usage: node encrypt.js [--segment-size N] KAS_URL KAS_PUBLIC_KEY.pem IN OUT [IN OUT ...]',
    );
    process.exit(2);
  }
  const client = new Client({
    kasEndpoint: kasUrl,
    kasPublicKey: fs.readFileSync(pemPath, 'utf8'),
    authProvider: noAuth,
  });
  const written = [];
  for (let i = 0; i < pairs.length; i += 2) {
    await encryptOne(client, pairs[i], pairs[i + 1], windowSize);
    written.push(pairs[i + 1]);
  }
  console.log(JSON.stringify({ client: `${name}@${version}`, written }));
}

main().catch((err) => {
  console.error(`encrypt.js: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
