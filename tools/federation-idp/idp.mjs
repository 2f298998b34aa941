// One nation's OpenID provider for `relto federation demo` and the tests.
//
// A maintained provider (oidc-provider, pinned in package.json / package-lock.json),
// configured here, never a hand-written token minter. Loopback only, demo only:
// `devInteractions` shows a sign-in form that accepts ANY password for a known
// person. Nothing is persisted (in-memory adapter); keys are made fresh per start.
//
//   node idp.mjs CONFIG.json
//
// CONFIG (written by relto's launcher, relto.cli.federation_demo):
//   issuer      "http://127.0.0.1:8202"     the issuer identifier (its port is listened on)
//   audience    "http://127.0.0.1:8102"     the relto node access tokens are for (aud)
//   people      [{"sub", "name", "nationality"}]  the only accounts that can sign in
//   clients     [{client_id, client_secret?, redirect_uris, dpop_bound_access_tokens?}]
//
// Access tokens are JWTs (typ at+jwt) for `audience`, DPoP-bound (cnf.jkt) when the
// token request carries a DPoP proof (RFC 9449; features.dPoP); ID tokens are ES256.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Provider } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = new URL(config.issuer);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname)) {
  console.error(`refusing to listen on ${issuer.hostname}: this demo provider is loopback only`);
  process.exit(2);
}

const people = new Map(config.people.map((p) => [p.sub, p]));
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };

const provider = new Provider(config.issuer, {
  clients: config.clients.map((c) => ({
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
    ...c,
  })),
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'profile'],
  claims: { openid: ['sub'], profile: ['name', 'nationality'] },
  async findAccount(ctx, sub) {
    const person = people.get(sub);
    if (!person) return undefined; // only this nation's demo people can sign in
    return {
      accountId: sub,
      async claims() {
        return { sub, name: person.name, nationality: person.nationality };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid profile',
        audience: config.audience,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  pkce: { required: () => true },
  ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
});

const server = provider.listen(Number(issuer.port), issuer.hostname === '[::1]' ? '::1' : issuer.hostname, () => {
  console.log(`oidc-provider ${config.issuer} ready (${people.size} people, audience ${config.audience})`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
